"""Schedules at scale: 100 pipelines, each with its own schedule, all firing at the same minute, with two
``manage.py worker`` processes sharing one database (the same clock as the users': real time, no fake).

Figures per round, from the fire time (the cron minute):
- fire time -> last of the 100 runs started (its ``started_at``): the goal, under 5 s;
- fire time -> last of the 100 runs queued (``created_at``): how long firing itself took.
Each round arms the next whole minute at least 15 s ahead, so a round takes 15-75 s. Two worker processes
is the scale-out mode: PostgreSQL and Redis (a fresh database; ``PIPEDECK_BENCH_POSTGRES_URL`` and
``PIPEDECK_BENCH_REDIS_URL`` override the addresses). Without them it falls back to a SQLite file and the
in-memory layer (both processes then contend for SQLite's one writer, and say so in the note).

``python -m bench triggers`` (``--quick`` for one round instead of three).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import BenchRow, check, shown, under

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = 100
WORKERS = 2
#: runs each worker executes at once: enough that the figure measures firing and claiming, not a queue
#: behind the runs themselves
CONCURRENCY = 50
SPEC = {
    "type": "ETL",
    "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": 0}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
    },
}


def _scale_out() -> tuple[dict[str, str], str] | None:
    """The environment of a fresh PostgreSQL database with Redis, and its name; None when unreachable."""
    from bench.runs_scaleout import POSTGRES, REDIS, _database_url, _reachable

    if not (_reachable(POSTGRES, 5432) and _reachable(REDIS, 6379)):
        return None
    import psycopg

    database = f"pipedeck_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    return {"DATABASE_URL": _database_url(database), "REDIS_URL": REDIS}, database


def _drop(database: str) -> None:
    import psycopg
    from django.db import connections

    from bench.runs_scaleout import POSTGRES, REDIS

    connections.close_all()
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    subprocess.run(["redis-cli", "-u", REDIS, "FLUSHDB"], capture_output=True)


def _setup_django(services: dict[str, str] | None) -> dict[str, str]:
    """Django on the bench's database; the environment the worker processes get."""
    scratch = Path(tempfile.mkdtemp(prefix="pipedeck-bench-triggers-"))
    for name in ("DATABASE_URL", "REDIS_URL", "PIPEDECK_SQLITE"):
        os.environ.pop(name, None)
    os.environ.update(services or {"PIPEDECK_SQLITE": str(scratch / "bench.sqlite3")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "designer.settings"
    os.environ["PIPEDECK_INPROCESS_WORKER"] = "false"
    os.environ.setdefault("PIPEDECK_DATA_ROOT", str(scratch / "data"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return {**os.environ, "PIPEDECK_WORKER_CONCURRENCY": str(CONCURRENCY)}


def _schedules() -> list[Any]:
    """A team, a project of 100 pipelines and one paused schedule per pipeline."""
    from designer.editor.models import Pipeline, PipelineVersion, Project
    from designer.teams.models import Team
    from designer.triggers.models import Schedule

    team = Team.objects.create(name="Bench", slug=f"bench-{int(time.time())}")
    project = Project.objects.create(team=team, name="fleet", slug="fleet", concurrency=1)
    schedules = []
    for i in range(PIPELINES):
        pipeline = Pipeline.objects.create(
            project=project, name=f"p{i:03d}", slug=f"p{i:03d}", spec=SPEC, is_valid=True
        )
        PipelineVersion.objects.create(pipeline=pipeline, number=1, spec=SPEC)
        schedules.append(
            Schedule.objects.create(
                team=team, project=project, pipeline=pipeline, name=f"s{i:03d}", cron="0 0 1 1 *", paused=True
            )
        )
    return schedules


def _next_minute(ahead: float = 15.0) -> dt.datetime:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead)
    return now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def _round(schedules: list[Any], number: int) -> tuple[float, float]:
    """Arm every schedule for the same coming minute; (fire -> last started, fire -> last queued) in s."""
    from designer.runs.models import Run
    from designer.triggers.models import Schedule

    fire = _next_minute()
    cron = f"{fire.minute} {fire.hour} * * *"
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(
        cron=cron, paused=False, next_fire_at=fire
    )
    deadline = fire + dt.timedelta(seconds=90)
    runs = Run.objects.filter(
        trigger__startswith="schedule s", created_at__gte=fire - dt.timedelta(seconds=5)
    )
    while dt.datetime.now(dt.UTC) < deadline:
        started = list(runs.exclude(started_at=None).values_list("started_at", flat=True))
        if len(started) >= PIPELINES:
            break
        time.sleep(0.2)
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(paused=True, next_fire_at=None)
    check(f"round {number}: runs started for the fire time", runs.exclude(started_at=None).count(), PIPELINES)
    check(f"round {number}: runs fired (no duplicate)", runs.count(), PIPELINES)
    queued = max(runs.values_list("created_at", flat=True))
    return (max(started) - fire).total_seconds(), (queued - fire).total_seconds()


def run(quick: bool = False) -> list[BenchRow]:
    scale_out = _scale_out()
    env = _setup_django(scale_out[0] if scale_out else None)
    schedules = _schedules()
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--id", f"bench-{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(WORKERS)
    ]
    try:
        started, queued = [], []
        for number in range(1 if quick else 3):
            first, last = _round(schedules, number + 1)
            started.append(first)
            queued.append(last)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(30)
        if scale_out:
            _drop(scale_out[1])
    where = (
        "PostgreSQL + Redis"
        if scale_out
        else "SQLite WAL + in-memory layer (PostgreSQL or Redis unreachable: the processes contend for "
        "SQLite's one writer and the other worker polls every 1 s)"
    )
    note = (
        f"{PIPELINES} schedules (one per pipeline) at the same minute, {WORKERS} worker processes "
        f"(concurrency {CONCURRENCY} each), {where}"
    )
    return [
        under(
            f"schedules: {PIPELINES} at one minute, fire -> last run started", "s", started, 5.0, note=note
        ),
        shown(f"schedules: {PIPELINES} at one minute, fire -> last run queued", "s", queued),
    ]
