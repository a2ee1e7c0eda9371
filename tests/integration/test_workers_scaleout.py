"""Scale-out on PostgreSQL + Redis: three ``manage.py worker`` processes and a separate Daphne.

- 300 queued runs are each executed exactly once;
- ``kill -9`` of a worker mid-run: its runs are recovered (re-queued, then finished elsewhere) within
  twice the lease;
- a websocket client of a Daphne process that runs no worker sees live events of those runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port, start_daphne

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/7"

SETUP = """
import json
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from designer.models import Membership, Pipeline, PipelineVersion, Project, Team

def pipeline(project, name, seconds):
    spec = {"type": "ETL", "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": seconds}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]}}}
    p = Pipeline.objects.create(project=project, name=name, slug=name, spec=spec, is_valid=True)
    PipelineVersion.objects.create(pipeline=p, number=1, spec=spec)

user = User.objects.create_user("alice", password="pw")
team = Team.objects.create(name="Acme", slug="acme")
Membership.objects.create(team=team, user=user, role="owner")
for slug, seconds in (("quick", 0.0), ("slow", 3.0), ("watched", 1.0)):
    project = Project.objects.create(team=team, name=slug, slug=slug, concurrency=1)
    pipeline(project, "main", seconds)
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(json.dumps({"session": session.session_key}))
"""

ENQUEUE = """
import json, sys
from django.contrib.auth.models import User
from django.db import transaction
from designer.models import Project
from designer.runs.launch import enqueue, snapshot
project = Project.objects.get(slug=sys.argv[-2])
spec, versions = snapshot(project, None, None)
with transaction.atomic():
    ids = [enqueue(project, spec, versions, [], {}, User.objects.get()).pk for _ in range(int(sys.argv[-1]))]
print(json.dumps(ids))
"""


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


class Cluster:
    """A fresh database, N worker processes and a Daphne process sharing PostgreSQL and Redis."""

    def __init__(self) -> None:
        self.db = f"pipedeck_scaleout_{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"{PG}/{self.db}",
            "REDIS_URL": REDIS,
            "PIPEDECK_INPROCESS_WORKER": "false",
            "PIPEDECK_WORKER_LEASE": str(LEASE),
            "PIPEDECK_WORKER_POLL": "0.2",
            "DJANGO_SETTINGS_MODULE": "designer.settings",
        }
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.daphne: subprocess.Popen[bytes] | None = None
        self.port = 0

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(f"{PG}/{self.db}", autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def shell(self, code: str, *argv: str) -> Any:
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + code, *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start(self) -> None:
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        self.manage("migrate", "--noinput", "-v", "0")
        subprocess.run(["redis-cli", "-n", "7", "FLUSHDB"], capture_output=True)

    def start_worker(self, name: str) -> None:
        self.workers[name] = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--concurrency", "4", "--id", name, "--grace", "1"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_daphne(self) -> None:
        self.port = free_port()
        self.daphne = start_daphne(self.port, self.env)
        deadline = time.monotonic() + 30
        while not _reachable("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "daphne did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in [*self.workers.values(), *([self.daphne] if self.daphne else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers.values(), *([self.daphne] if self.daphne else [])]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


def wait_until(predicate, timeout: float, step: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not _reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    if not _reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    c = Cluster()
    c.start()
    try:
        c.session = c.shell(SETUP)["session"]  # type: ignore[attr-defined]
        for name in ("w1", "w2", "w3"):
            c.start_worker(name)
        c.start_daphne()
        yield c
    finally:
        c.stop()


async def _watch(cluster: Cluster, ids_ready: asyncio.Future[list[int]]) -> tuple[list[dict], list[dict]]:
    import websockets

    headers = {"Cookie": f"sessionid={cluster.session}", "Origin": f"http://127.0.0.1:{cluster.port}"}  # type: ignore[attr-defined]
    base = f"ws://127.0.0.1:{cluster.port}"
    async with websockets.connect(f"{base}/ws/teams/acme/runs/", additional_headers=headers) as team_ws:
        run_id = (await ids_ready)[0]
        events: list[dict] = []
        async with websockets.connect(f"{base}/ws/runs/{run_id}/", additional_headers=headers) as run_ws:
            while not any(e["kind"] == "run_finished" for e in events):
                message = json.loads(await asyncio.wait_for(run_ws.recv(), 20))
                if message["type"] == "events":
                    events += message["events"]
        updates: list[dict] = []
        while not any(u["id"] == run_id and u["state"] == "succeeded" for u in updates):
            message = json.loads(await asyncio.wait_for(team_ws.recv(), 20))
            updates.append(message["run"])
    return events, updates


def test_a_second_daphne_streams_events_of_runs_executed_by_workers(cluster: Cluster) -> None:
    async def scenario() -> tuple[list[dict], list[dict]]:
        ready: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        watcher = asyncio.create_task(_watch(cluster, ready))
        await asyncio.sleep(0.5)  # the team socket is connected before the run is queued
        ready.set_result(await asyncio.to_thread(cluster.shell, ENQUEUE, "watched", "1"))
        return await watcher

    events, updates = asyncio.run(scenario())
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and "step_started" in kinds and kinds[-1] == "run_finished"
    assert events[-1]["status"] == "succeeded"
    assert [u["state"] for u in updates][-1] == "succeeded"
    assert "queued" in [u["state"] for u in updates]


def test_three_workers_execute_300_runs_exactly_once(cluster: Cluster) -> None:
    ids = cluster.shell(ENQUEUE, "quick", "300")
    assert len(ids) == 300

    def all_done() -> bool:
        rows = cluster.sql(
            "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state IN ('queued', 'running')", ids
        )
        return rows[0][0] == 0

    wait_until(all_done, timeout=240, step=0.5)
    rows = cluster.sql(
        "SELECT state, attempt, count(*) FROM designer_run WHERE id = ANY(%s) GROUP BY 1, 2", ids
    )
    assert rows == [("succeeded", 1, 300)]
    starts = cluster.sql(
        "SELECT run_id, count(*) FROM designer_runevent "
        "WHERE run_id = ANY(%s) AND kind = 'run_started' GROUP BY 1",
        ids,
    )
    assert len(starts) == 300 and {n for _, n in starts} == {1}
    gaps = cluster.sql(
        "SELECT r.id FROM designer_run r JOIN designer_runevent e ON e.run_id = r.id WHERE r.id = ANY(%s) "
        "GROUP BY r.id HAVING count(*) <> max(e.seq) OR max(e.seq) <> max(r.last_seq)",
        ids,
    )
    assert gaps == []


def test_runs_of_a_killed_worker_are_recovered_within_twice_the_lease(cluster: Cluster) -> None:
    ids = cluster.shell(ENQUEUE, "slow", "12")

    def victim_holding() -> tuple[str, list[int]] | None:
        rows = cluster.sql(
            "SELECT worker_id, id FROM designer_run WHERE id = ANY(%s) AND state = 'running'", ids
        )
        held: dict[str, list[int]] = {}
        for worker, run_id in rows:
            held.setdefault(worker, []).append(run_id)
        return next(((w, r) for w, r in held.items() if w in cluster.workers), None)

    victim, held = wait_until(victim_holding, timeout=30)
    cluster.workers[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    def recovered() -> bool:
        rows = cluster.sql(
            "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state = 'running' AND worker_id = %s",
            held,
            victim,
        )
        return rows[0][0] == 0

    wait_until(recovered, timeout=4 * LEASE, step=0.05)
    assert time.monotonic() - killed_at <= 2 * LEASE
    wait_until(
        lambda: (
            cluster.sql("SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state <> 'succeeded'", ids)[
                0
            ][0]
            == 0
        ),
        timeout=60,
        step=0.5,
    )
    attempts = dict(cluster.sql("SELECT id, attempt FROM designer_run WHERE id = ANY(%s)", held))
    assert set(attempts.values()) == {2}
