"""The embedded default starts its worker with Daphne, not with the first page view."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from designer.models import Run
from designer.runs.launch import start_run

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default is SQLite")
def test_a_run_queued_before_the_server_started_runs_without_any_request(sleep_project, alice):
    run = start_run(sleep_project, alice)
    env = {
        **os.environ,
        "PIPEDECK_SQLITE": str(connection.settings_dict["NAME"]),
        "PIPEDECK_SQLITE_WAL": "false",
        "PIPEDECK_INPROCESS_WORKER": "true",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(_free_port()),
            "designer.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not Run.objects.get(pk=run.pk).finished:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the queued run was not picked up without a request"
            time.sleep(0.1)
        finished = Run.objects.get(pk=run.pk)
        errors = [p["error"] for p in finished.events.values_list("payload", flat=True) if p.get("error")]
        assert finished.state == "succeeded", errors
    finally:
        server.terminate()
        server.wait(15)
