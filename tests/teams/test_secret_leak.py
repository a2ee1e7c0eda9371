"""A secret never leaks: not in a page, a stored event, a log line, a YAML export or a database column.

A run's steps receive a team secret, log it, and fail with it in their error; the project is exported. Then
every response body, every stored event, every captured log record and every column of every table is
searched for the value in clear. The plugins also prove that they did receive the real value (else the
test would pass vacuously).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from designer.runs.isolation import team_data_root
from designer.runs.models import Run
from designer.runs.worker import Worker
from designer.teams.secrets import team_secret_resolver
from orchestrator.events import MemorySink
from orchestrator.plugins.registry import registry
from orchestrator.scheduler import run_project
from orchestrator.spec import ProjectSpec
from tests.factory import sealed_preview
from tests.teams.conftest import build_crew
from tests.teams.leaky_plugins import CANARY, SEEN, LeakyExtract, LeakyLoad, StaticSecret, digest, seen

LEAKY_SPEC: dict[str, Any] = {
    "type": "ETL",
    "phases": {
        "extract": {
            "steps": [
                {
                    "id": "read",
                    "plugin": "test_leaky_extract",
                    "args": {"dsn": "pg://etl:${{ secrets.LEAK }}@db/x"},
                }
            ]
        },
        "load": {
            "steps": [{"id": "write", "plugin": "test_leaky_load", "args": {"dsn": "${{ secrets.LEAK }}"}}]
        },
    },
}


LEAKY_YAML = f"""\
secrets:
  LEAK:
    plugin: test_static_secret
    args: {{value: {CANARY}}}
---
pipelines:
  leaky:
    type: ETL
    phases:
      extract:
        steps:
          - {{id: read, plugin: test_leaky_extract, args: {{dsn: "pg://etl:${{{{ secrets.LEAK }}}}@db/x"}}}}
      load:
        steps:
          - {{id: write, plugin: test_leaky_load, args: {{dsn: "${{{{ secrets.LEAK }}}}"}}}}
"""


@pytest.fixture
def leaky_plugins(settings: Any) -> Iterator[None]:
    """The two leaky plugins, registered for this test only (in runs' child processes too)."""
    settings.PIPEDECK_PLUGIN_MODULES = [LeakyExtract.__module__]
    registry.load()
    for cls in (LeakyExtract, LeakyLoad, StaticSecret):
        registry.register(cls)
    SEEN.clear()
    yield
    for cls in (LeakyExtract, LeakyLoad, StaticSecret):
        registry.unregister(cls.name)


@pytest.fixture
def worker() -> Iterator[Worker]:
    """A run worker in a background thread, like the in-process worker of the web app."""
    worker = Worker(worker_id="leak-test-worker", concurrency=2, lease=5, poll=0.05, grace=2)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    assert worker.ready.wait(5)
    yield worker
    worker.stop()
    thread.join(10)


def _every_stored_value() -> Iterator[tuple[str, str, Any]]:
    """``(table, column, value)`` for every column of every row of every table of the database."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                yield from ((table, column, value) for column, value in zip(columns, row, strict=True))


def _assert_nothing_stored_in_clear() -> int:
    cells = 0
    for table, column, value in _every_stored_value():
        cells += 1
        text = value.decode("utf-8", "replace") if isinstance(value, bytes | memoryview) else str(value)
        assert CANARY not in text, f"the secret is stored in clear in {table}.{column}"
    return cells


async def _websocket_messages(run_id: int, cookie: str) -> str:
    from designer.asgi import application

    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, f"/ws/runs/{run_id}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    received = []
    while True:
        message = await communicator.receive_json_from(timeout=5)
        received.append(str(message))
        if message.get("type") == "synced":
            break
    await communicator.disconnect()
    return "\n".join(received)


@pytest.mark.django_db(transaction=True)
def test_a_secret_never_leaks_from_a_run_its_pages_its_exports_or_the_database(
    leaky_plugins, worker, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    crew = build_crew()
    owner, runner, viewer = crew.client("owner"), crew.client("runner"), crew.client("viewer")
    bodies: dict[str, bytes] = {}

    response = owner.post("/t/acme/secrets/", {"name": "LEAK", "value": CANARY}, HTTP_HX_REQUEST="true")
    bodies["set secret"] = response.content
    assert b"Secret LEAK saved" in response.content

    # importing a file whose secrets document holds the value: not stored, and the user is told
    upload = SimpleUploadedFile("leaky.yaml", LEAKY_YAML.encode(), content_type="application/x-yaml")
    response = crew.client("editor").post("/p/acme/sales/-/upload/", {"file": upload})
    bodies["upload"] = response.content
    assert response.status_code == 200, response.content.decode()[-2000:]
    assert b"The file holds a value for secret &#x27;LEAK&#x27;: it was NOT stored." in response.content
    assert b"will use the team secret &#x27;LEAK&#x27;" in response.content
    # the preview's "Apply import": the file comes back sealed (the page never holds the value)
    response = crew.client("editor").post("/p/acme/sales/-/upload/", sealed_preview(response.content))
    bodies["import"] = response.content
    assert response.status_code == 302, response.content.decode()[-2000:]

    response = runner.post("/p/acme/sales/-/run/", {"pipeline": "leaky"})
    assert response.status_code == 302, response.content[:500]
    run = Run.objects.latest("pk")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.finished:
            break
        time.sleep(0.1)
    assert run.state == "failed", run.state

    # the steps did get the real value: the test is not vacuous
    root = team_data_root(run.team)
    assert seen(root, "extract") == digest(f"pg://etl:{CANARY}@db/x") and seen(root, "load") == digest(CANARY)
    events = list(run.events.order_by("seq").values_list("kind", "payload"))
    logs = [p["message"] for k, p in events if k == "step_log"]
    assert "connecting to pg://etl:***@db/x" in logs and "the password is ***" in logs
    errors = [p.get("error") or "" for k, p in events if k == "step_finished" and p.get("status") == "failed"]
    assert any("could not log in with password ***" in e for e in errors), errors

    for who, client in (("owner", owner), ("viewer", viewer)):
        for url in (
            f"/runs/{run.pk}/",
            f"/runs/{run.pk}/events/",
            "/t/acme/runs/",
            "/p/acme/sales/",
            "/p/acme/sales/leaky/",
            "/p/acme/sales/leaky/yaml/",
            "/p/acme/sales/leaky/history/",
            "/p/acme/sales/leaky/pipeline.yaml",
            "/p/acme/sales/project.yaml",
            "/t/acme/settings/",
            "/t/acme/activity/",
            "/t/acme/library/",
            "/p/acme/sales/-/variables/",
        ):
            response = client.get(url)
            assert response.status_code == 200, f"{url}: {response.status_code}"
            bodies[f"{who} {url}"] = response.content
    for name in ("/p/acme/sales/leaky/pipeline.yaml", "/p/acme/sales/project.yaml"):
        assert b"${{ secrets.LEAK }}" in bodies[f"owner {name}"], name

    cookie = viewer.cookies[settings.SESSION_COOKIE_NAME].value
    bodies["websocket replay"] = asyncio.run(_websocket_messages(run.pk, cookie)).encode()
    assert b"***" in bodies["websocket replay"]

    for where, body in bodies.items():
        assert CANARY.encode() not in body, f"the secret is in the response of {where}"
    for record in caplog.records:
        assert CANARY not in record.getMessage(), f"the secret is in a log line of {record.name}"
        assert CANARY not in str(record.exc_text or ""), (
            f"the secret is in a traceback logged by {record.name}"
        )
    out, err = capfd.readouterr()
    assert CANARY not in out and CANARY not in err, "the secret was printed by the process"
    assert _assert_nothing_stored_in_clear() > 100


async def test_the_engine_with_the_team_resolver_redacts_every_event(
    leaky_plugins, transactional_db, tmp_path
):
    """The same run driven straight through ``run_project`` with the team's resolver and a memory sink."""
    from asgiref.sync import sync_to_async

    def setup() -> Any:
        crew = build_crew()
        from designer.teams.secrets import set_secret

        set_secret(crew.team, "LEAK", CANARY)
        return team_secret_resolver(crew.team)

    resolver = await sync_to_async(setup)()
    sink = MemorySink()
    spec = ProjectSpec.model_validate({"pipelines": {"leaky": LEAKY_SPEC}})
    result = await run_project(spec, sinks=[sink], secrets=resolver, data_root=tmp_path)
    assert str(result.status) == "failed"
    assert SEEN["load"] == CANARY
    dumped = "\n".join(e.to_json() for e in sink.events)
    assert "could not log in with password ***" in dumped
    assert CANARY not in dumped and CANARY not in (result.error or "")
