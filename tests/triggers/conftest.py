"""Fixtures for triggers: a fake clock (time moves when a test says so, never by sleeping), real workers in
threads that report every trigger look, a real local HTTP receiver, and a project with a run parameter."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from designer.runs.worker import Worker
from designer.triggers import clock, loop
from designer.triggers.parameters import set_parameter
from tests.factory import make_pipeline

UTC = dt.UTC


class FakeClock:
    """``clock.now()`` for the test: it says what time it is, and moves only with ``set`` / ``advance``."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        with self._lock:
            self._now = moment

    def advance(self, **delta: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(**delta)
            return self._now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The triggers' clock, at 2026-11-01 01:00 UTC until the test moves it."""
    fake = FakeClock(dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
def param_project(project):  # type: ignore[no-untyped-def]
    """``project`` with pipeline ``orders`` and run parameters ``day`` (date, required) and ``limit``
    (integer, default 10)."""
    make_pipeline(project, "orders")
    set_parameter(project, "day", "date", description="The business day", required=True)
    set_parameter(project, "limit", "integer", default="10")
    return project


class Looks:
    """Every trigger look the workers make: (worker id, the clock's time then), and a way to wait for them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dt.datetime]] = []
        self.changed = threading.Condition()

    def add(self, worker_id: str, now: dt.datetime) -> None:
        with self.changed:
            self.seen.append((worker_id, now))
            self.changed.notify_all()

    def wait(self, workers: list[str], since: dt.datetime, count: int = 2, timeout: float = 20) -> None:
        """Until each of ``workers`` has looked ``count`` times at a clock at or after ``since``."""

        def enough() -> bool:
            return all(
                sum(1 for w, t in self.seen if w == worker and t >= since) >= count for worker in workers
            )

        with self.changed:
            assert self.changed.wait_for(enough, timeout), f"workers did not look: {self.seen[-6:]}"


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch, settings) -> Looks:  # type: ignore[no-untyped-def]
    """Workers look for due triggers on every turn of their loop, and report each look here."""
    settings.PIPEDECK_TRIGGERS_TICK = 0.0
    seen = Looks()
    real = loop.due_work

    def reporting(worker_id: str, first: bool = True) -> dict[str, int]:
        now = clock.now()
        done = real(worker_id, first)
        seen.add(worker_id, now)
        return done

    monkeypatch.setattr(loop, "due_work", reporting)
    return seen


@dataclass
class Crew:
    """Workers serving in threads; ``stop`` one (as a restart does), ``start`` more."""

    running: dict[str, tuple[Worker, threading.Thread]] = field(default_factory=dict)

    def start(self, worker_id: str, concurrency: int = 4) -> Worker:
        worker = Worker(worker_id=worker_id, concurrency=concurrency, lease=5, poll=0.05, grace=2)
        thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True, name=worker_id)
        thread.start()
        assert worker.ready.wait(10)
        self.running[worker_id] = (worker, thread)
        return worker

    def stop(self, worker_id: str) -> None:
        worker, thread = self.running.pop(worker_id)
        worker.stop()
        thread.join(15)
        assert not thread.is_alive()

    def stop_all(self) -> None:
        for worker_id in list(self.running):
            self.stop(worker_id)


@pytest.fixture
def workers() -> Iterator[Crew]:
    crew = Crew()
    yield crew
    crew.stop_all()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST (JSON) and answers ``status``; requests
    to ``/hang`` get no answer until the test ends (a destination that times out)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.arrived = threading.Condition()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver.arrived:
                    receiver.requests.append(
                        Received(self.path, dict(self.headers), json.loads(raw or b"null"))
                    )
                    receiver.arrived.notify_all()
                if self.path.startswith("/hang"):
                    receiver.release.wait(30)
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    """A local HTTP receiver, reachable because the site's egress policy allows 127.0.0.1 here."""
    settings.PIPEDECK_EGRESS_ALLOW = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.close()
