"""R2 on the scale-out mode: event -> websocket through PostgreSQL and Redis, across processes.

One ``manage.py worker`` process executes the run and publishes to Redis (channels-redis); a separate
Daphne without a worker serves the 100 websockets (the same lean clients, run and figures as
``bench/runs.py``). The Daphne process subscribes to the run's group once and fans each batch out to its
websockets (``designer/runs/fanout.py``), so Redis carries one message per batch, not one per client.
Needs PostgreSQL and Redis on this machine (``PIPEDECK_BENCH_POSTGRES_URL``, ``PIPEDECK_BENCH_REDIS_URL``
override the addresses); prints why and measures nothing when they are unreachable.

``python -m bench runs_scaleout`` (``--quick`` for one run instead of three).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import urlsplit

from bench import BenchRow, shown, under
from bench.runs import ROOT, LiveServer

POSTGRES = os.environ.get("PIPEDECK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("PIPEDECK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")


def _reachable(url: str, port: int) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), timeout=2).close()
    except OSError:
        return False
    return True


def _database_url(name: str) -> str:
    parts = urlsplit(POSTGRES)
    return parts._replace(path=f"/{name}").geturl()


class Cluster:
    """A fresh PostgreSQL database, a Daphne without worker and one worker process, sharing Redis."""

    def __init__(self) -> None:
        import psycopg

        self.database = f"pipedeck_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "designer.settings",
            "DATABASE_URL": _database_url(self.database),
            "REDIS_URL": REDIS,
            "PIPEDECK_INPROCESS_WORKER": "false",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def setup_django(self) -> None:
        os.environ.update({k: self.env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")})
        os.environ["PIPEDECK_INPROCESS_WORKER"] = "false"
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)

    def start(self) -> LiveServer:
        worker = [sys.executable, "manage.py", "worker", "--concurrency", "4"]
        self.procs.append(subprocess.Popen(worker, cwd=ROOT, env=self.env, stderr=subprocess.DEVNULL))
        server = LiveServer(self.env)
        self.procs.append(server.proc)
        return server

    def stop(self) -> None:
        import psycopg

        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        subprocess.run(["redis-cli", "-u", REDIS, "FLUSHDB"], capture_output=True)


def run(quick: bool = False) -> list[BenchRow]:
    """R2 with 1 and 100 clients on the scale-out mode; no rows when PostgreSQL or Redis is missing."""
    if not (_reachable(POSTGRES, 5432) and _reachable(REDIS, 6379)):
        print(
            f"runs_scaleout: PostgreSQL ({POSTGRES}) or Redis ({REDIS}) unreachable: skipped", file=sys.stderr
        )
        return []
    from bench import runs

    cluster = Cluster()
    try:
        cluster.setup_django()
        fx: dict[str, Any] = runs._fixtures()
        server = cluster.start()
        runs.bench_event_latency(server, fx, 1)  # warms the server and the worker up
        alone, gaps = runs.bench_event_latency(server, fx, 1)
        latencies: list[float] = []
        for _ in range(1 if quick else 3):
            more, more_gaps = runs.bench_event_latency(server, fx, 100)
            latencies += more
            gaps += more_gaps
    finally:
        cluster.stop()
    if gaps:
        print(f"warning: websocket clients saw {gaps} seq gaps", file=sys.stderr)
    ms = 1000.0
    alone_ms = [v * ms for v in alone]
    label = "R2 scale-out (PG + Redis, worker process), 100 clients"
    return [
        shown(
            f"{label} (p50)",
            "ms",
            [runs._pct(latencies, 0.5) * ms],
            versus="1 client",
            theirs=[runs._pct(alone_ms, 0.5)],
        ),
        under(
            f"{label} (p99)",
            "ms",
            [runs._pct(latencies, 0.99) * ms],
            50,
            versus="1 client",
            theirs=[runs._pct(alone_ms, 0.99)],
        ),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
