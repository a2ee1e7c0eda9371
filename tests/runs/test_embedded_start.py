"""The embedded default starts its worker with Daphne, not with the first page view."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from django.db import connection

from designer.runs.launch import start_run
from designer.runs.models import Run
from tests.servers import free_port, start_daphne

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded default is SQLite")
def test_a_run_queued_before_the_server_started_runs_without_any_request(sleep_project, alice):
    run = start_run(sleep_project, alice)
    env = {
        **os.environ,
        "PIPEDECK_SQLITE": str(connection.settings_dict["NAME"]),
        "PIPEDECK_SQLITE_WAL": "false",
        "PIPEDECK_INPROCESS_WORKER": "true",
    }
    server = start_daphne(free_port(), env, stderr=subprocess.PIPE)
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
