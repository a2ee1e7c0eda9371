"""Fixtures for run tests: a project with sleep pipelines, and a worker running in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from designer.runs.worker import Worker
from tests.factory import make_pipeline


@pytest.fixture(autouse=True)
def fast_passwords(settings):  # type: ignore[no-untyped-def]
    """Hashing test users' passwords with PBKDF2 costs seconds per test on a busy machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sleep_project(project):  # type: ignore[no-untyped-def]
    """``project`` with one valid ETL pipeline ``orders`` (sleep_extract -> sleep_load)."""
    make_pipeline(project, "orders")
    return project


@pytest.fixture
def worker_thread() -> Iterator[Worker]:
    """A worker serving in a background thread (stopped at the end of the test)."""
    worker = Worker(worker_id="test-worker", concurrency=4, lease=5, poll=0.05, grace=2)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    assert worker.ready.wait(5)
    yield worker
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def fresh_layer() -> Iterator[None]:
    """The in-memory layer binds its queues to one event loop: give each test its own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def session_headers(user) -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    """Websocket headers of ``user``'s logged-in session (cookie, same-origin)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return [
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        (b"origin", b"http://testserver"),
    ]
