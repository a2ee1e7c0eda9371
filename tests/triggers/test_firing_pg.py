"""Exactly-once firing on PostgreSQL: many workers looking at the same instant (row locks skipped, not
waited for), and the unique (schedule, fire time) row refusing a second insert from a worker with an old
view. Also a backfill advanced by many workers at once never exceeds its concurrency.

Run on a SQLite session (the default), ``test_firing_cases_pass_on_postgresql`` re-runs this file in a
child pytest with DATABASE_URL pointing at 127.0.0.1:5432, where the ``test_pg_*`` cases execute.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, connections, transaction

from designer.runs.models import Run
from designer.triggers import backfills, clock, schedules
from designer.triggers.models import ScheduleFire
from tests.factory import make_pipeline, make_project, make_team

pytestmark = pytest.mark.integration

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ON_PG = connection.vendor == "postgresql"
ROOT = Path(__file__).resolve().parents[2]
on_pg_only = pytest.mark.skipif(not ON_PG, reason="runs in the PostgreSQL child session")
UTC = dt.UTC


def postgres_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.mark.skipif(ON_PG, reason="already on PostgreSQL: the cases run directly")
def test_firing_cases_pass_on_postgresql() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres)")
    env = {**os.environ, "DATABASE_URL": PG_URL, "PIPEDECK_TEST_DB": "test_pipedeck_triggers"}
    env.pop("PIPEDECK_SQLITE", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--create-db",
        __file__,
        "-k",
        "test_pg_",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


def _together(count: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            barrier.wait(10)
            work(n)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


@pytest.fixture
def pg_project(db, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(clock, "now", lambda: dt.datetime(2026, 11, 1, 0, 30, tzinfo=UTC))
    project = make_project(make_team("Acme"), "Sales")
    make_pipeline(project, "orders")
    return project


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_fifty_schedules_and_eight_workers_fire_each_time_once(pg_project) -> None:  # type: ignore[no-untyped-def]
    for n in range(50):
        schedules.save_schedule(
            pg_project, schedules.ScheduleData(name=f"s{n}", cron="0 * * * *", catch_up="all"), None
        )
    now = dt.datetime(2026, 11, 1, 3, 0, 30, tzinfo=UTC)  # 01:00, 02:00, 03:00 due for each
    assert _together(8, lambda n: schedules.tick(now, f"w{n}")) == []
    assert ScheduleFire.objects.count() == 150 and Run.objects.count() == 150
    assert ScheduleFire.objects.filter(run__isnull=True).count() == 0


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_the_unique_fire_row_refuses_a_second_insert(pg_project) -> None:  # type: ignore[no-untyped-def]
    schedule = schedules.save_schedule(
        pg_project, schedules.ScheduleData(name="nightly", cron="0 2 * * *"), None
    )
    moment = dt.datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    ScheduleFire.objects.create(schedule=schedule, fire_at=moment)
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduleFire.objects.create(schedule=schedule, fire_at=moment)


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_workers_advancing_one_backfill_together_keep_its_concurrency(pg_project) -> None:  # type: ignore[no-untyped-def]
    schedule = schedules.save_schedule(
        pg_project, schedules.ScheduleData(name="nightly", cron="0 2 * * *"), None
    )
    backfill = backfills.start_backfill(schedule, dt.date(2026, 10, 1), dt.date(2026, 10, 20), 4, None)
    Run.objects.update(state="succeeded")  # the first four finished: the next four may start
    assert _together(6, lambda n: backfills.advance(backfill.pk)) == []
    assert Run.objects.filter(state="queued").count() == 4 and Run.objects.count() == 8
