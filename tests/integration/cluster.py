"""A Pipedeck scale-out site for integration tests: a fresh PostgreSQL database, Redis, ``manage.py
worker`` processes and a Daphne process, all real; helpers to queue runs and query the database."""

from __future__ import annotations

import contextlib
import json
import os
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

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/7"
#: the workers' lease of the cluster's ordinary tests: one a loaded machine holds
LEASE = 30.0

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
model, versions = snapshot(project, None, None)
spec = model.model_dump(mode="json")
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
    """A fresh database, N worker processes and a Daphne process sharing PostgreSQL and Redis.

    ``database_port`` and ``redis_port`` put something (a TCP proxy) between the processes and the services.
    """

    def __init__(self, database_port: int = 5432, redis_port: int = 6379) -> None:
        self.db = f"pipedeck_scaleout_{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{database_port}/{self.db}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/7",
            "PIPEDECK_INPROCESS_WORKER": "false",
            "PIPEDECK_WORKER_LEASE": str(LEASE),
            "PIPEDECK_WORKER_POLL": "0.2",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
        self.session = ""
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

    def start_worker(self, name: str, lease: float = LEASE, grace: float = 1.0) -> subprocess.Popen[bytes]:
        """A ``manage.py worker`` process named ``name`` with its own lease."""
        self.workers[name] = subprocess.Popen(
            [
                *(sys.executable, "manage.py", "worker", "--concurrency", "4", "--id", name),
                *("--grace", str(grace), "--lease", str(lease)),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self.workers[name]

    def stop_worker(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def enqueue(self, project: str, count: int) -> list[int]:
        """Queue ``count`` runs of ``project`` (quick, slow or watched); their ids."""
        ids: list[int] = self.shell(ENQUEUE, project, str(count))
        return ids

    def unfinished(self, ids: list[int]) -> int:
        return int(
            self.sql(
                "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state IN ('queued', 'running')", ids
            )[0][0]
        )

    def gaps(self, ids: list[int]) -> list[int]:
        """Runs whose stored events are not numbered 1..last_seq exactly once each."""
        rows = self.sql(
            "SELECT r.id FROM designer_run r LEFT JOIN designer_runevent e ON e.run_id = r.id "
            "WHERE r.id = ANY(%s) GROUP BY r.id "
            "HAVING count(e.id) <> count(DISTINCT e.seq) OR count(e.id) <> max(r.last_seq) "
            "OR max(e.seq) <> max(r.last_seq)",
            ids,
        )
        return [row[0] for row in rows]

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


def services_or_skip() -> None:
    """Skip the calling test when PostgreSQL or Redis is not reachable here."""
    if not _reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    if not _reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")


@contextlib.contextmanager
def running_cluster(
    workers: dict[str, float] | None = None,
    *,
    database_port: int = 5432,
    redis_port: int = 6379,
    daphne: bool = True,
) -> Iterator[Cluster]:
    """A started cluster with ``workers`` (name -> lease; default three of ``LEASE``) and a Daphne."""
    services_or_skip()
    c = Cluster(database_port, redis_port)
    c.start()
    try:
        c.session = c.shell(SETUP)["session"]
        for name, lease in (
            workers if workers is not None else dict.fromkeys(("w1", "w2", "w3"), LEASE)
        ).items():
            c.start_worker(name, lease)
        if daphne:
            c.start_daphne()
        yield c
    finally:
        c.stop()
