"""The eight ways one team's pipeline author took over others, each tried again through the web app.

Each test is the attack as it was reproduced (issue 10): an author of team Rival uploads a pipeline to their
own project and runs it. Where the designer now refuses the file, the same pipeline is also forced into
the run queue (as if saved before the rule existed), so the run's own confinement is tested too.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings

from designer.runs.isolation import team_data_root
from designer.runs.models import Run, StepRun
from designer.teams.secrets import set_secret
from tests.processes import descendants
from tests.security.conftest import Attack, acme_owners, everything_of, wait

pytestmark = pytest.mark.usefixtures("worker")

CANARY = "canary-7Q9zK2-never-shown"


def _project(pipeline: str, body: str, head: str = "") -> str:
    return f"{head}pipelines:\n  {pipeline}:\n{body}"


# -- 1. SQLite ATTACH ---------------------------------------------------------------------------------------


def test_sqlite_attach_cannot_reach_the_app_database(attack: Attack) -> None:
    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("the app database is not SQLite here")
    app_db = settings.DATABASES["default"]["NAME"]
    crew = attack.crew
    before = acme_owners(crew)
    sql = (
        f"COMMIT; ATTACH DATABASE '{app_db}' AS app; "
        "INSERT INTO app.designer_membership (team_id, user_id, role) "
        f"VALUES ({crew.team.pk}, {crew.outsider.pk}, 'owner'); DETACH DATABASE app; BEGIN;"
    )
    text = _project(
        "grab",
        "    type: ELT\n    phases:\n"
        "      extract: {steps: [{id: one, plugin: generate_rows, args: {rows: 1, columns: {x: '1'}}}]}\n"
        "      load: {steps: [{id: scratch, plugin: sql_load,"
        " args: {dsn: 'sqlite:///scratch.db', table: t, mode: replace}}]}\n"
        f"      transform_at_load: {{steps: [{{id: take, plugin: sql_execute,"
        f" args: {{dsn: 'sqlite:///scratch.db', sql: {json.dumps(sql)}}}}}]}}\n",
    )
    attack.upload(text)
    run = attack.start("grab") if attack.saved("grab") else attack.force(text, "grab")
    assert isinstance(run, Run)
    run = wait(run)
    assert run.state == "failed"
    assert acme_owners(crew) == before, "the author made themselves owner of another team"
    assert "COMMIT" in run.error or "transaction" in everything_of(run)


# -- 2. Polars SQL reads any file ---------------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A file outside every data root (the app's Fernet key, say)."""
    path = tmp_path / "fernet-key.csv"
    path.write_text(f"key\n{CANARY}\n")
    return path


def test_polars_sql_cannot_read_a_file(attack: Attack, key_file: Path) -> None:
    text = _project(
        "peek",
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: one, plugin: generate_rows, args: {rows: 1, columns: {x: '1'}}}]}\n"
        "      transform: {steps: [\n"
        "        {id: read, plugin: sql_transform,"
        f" args: {{query: \"SELECT * FROM read_csv('{key_file}')\"}}}},\n"
        "        {id: leak, plugin: cast_columns, args: {types: {key: int}}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n",
    )
    page = attack.upload(text)
    assert not attack.saved("peek") and "read_csv" in page
    run = wait(attack.force(text, "peek"))
    assert run.state == "failed" and "read_csv" in everything_of(run)
    assert CANARY not in everything_of(run)


# -- 3. ${{ env.X }} reads the server's environment -----------------------------------------------------


def test_env_references_read_only_what_the_site_allows(
    attack: Attack, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", CANARY)
    monkeypatch.setenv("SHARED_BUCKET", "bucket-1")
    settings.PIPEDECK_RUN_ENV_ALLOW = ["SHARED_BUCKET"]
    text = _project(
        "env",
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: read, plugin: csv_extract,"
        " args: {path: '${{ env.DJANGO_SECRET_KEY }}'}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load,"
        " args: {path: 'out/${{ env.SHARED_BUCKET }}.csv'}}]}\n",
    )
    page = attack.upload(text)
    assert not attack.saved("env")
    assert "environment variable &#x27;DJANGO_SECRET_KEY&#x27; is not available to runs" in page
    assert "SHARED_BUCKET&#x27; is not available" not in page
    run = wait(attack.force(text, "env"))
    assert run.state == "failed"
    assert "environment variable 'DJANGO_SECRET_KEY' is not set" in everything_of(run)
    assert CANARY not in everything_of(run)


def test_a_run_process_holds_nothing_of_the_app(
    attack: Attack, probe_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the most curious plugin sees in a run: no key, URL or setting of the app, anywhere."""
    monkeypatch.setenv("DJANGO_SECRET_KEY", CANARY)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{CANARY}@db/app")
    text = _project(
        "probe",
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: look, plugin: probe_extract}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out/probe.csv}}]}\n",
    )
    attack.upload(text)
    run = wait(attack.start("probe"))  # type: ignore[arg-type]
    assert run.state == "succeeded", run.error
    line = next(
        m
        for m in run.events.filter(kind="step_log").values_list("payload__message", flat=True)
        if m.startswith("probe ")
    )
    report = json.loads(line.removeprefix("probe "))
    root = str(team_data_root(attack.crew.other_team))
    assert report["cwd"] == root and report["data_root"] == root
    assert set(report["environ"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "POLARS_MAX_THREADS"}
    assert set(report["initial_environ"]) <= {"PATH", "LANG", "LC_ALL"}, report["initial_environ"]
    assert CANARY not in line
    assert report["leader_of_its_group"] is True
    assert report["address_space"] == settings.PIPEDECK_RUN_LIMITS["memory_mib"] * 1024 * 1024
    assert report["cpu"] == settings.PIPEDECK_RUN_LIMITS["cpu_seconds"]
    assert report["open_files"] == settings.PIPEDECK_RUN_LIMITS["open_files"]
    assert len(report["fds"]) <= 12, f"the run inherited descriptors: {report['fds']}"


# -- 4. run-time variable overrides are resolved ----------------------------------------------------------


@pytest.mark.parametrize("value", ["${{ env.HOME }}/x", "${{ secrets.API }}", "a${{variables.B}}"])
def test_run_time_values_are_literal(attack: Attack, value: str) -> None:
    refusal = attack.start("rival_orders", f"ORDERS_FILE={value}")
    assert isinstance(refusal, str)
    assert "values given when starting a run are literal" in refusal
    assert not Run.objects.filter(project=attack.project).exists()


# -- 5. SSRF ------------------------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    body = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        self.send_response(400)
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def internal_service() -> Iterator[tuple[int, type[_Recorder]]]:
    """An internal HTTP service on 127.0.0.1 that records every request and answers with a canary."""
    handler = type("Handler", (_Recorder,), {"hits": [], "body": f"internal {CANARY}".encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f000001", "127.1"]
)
def test_http_steps_cannot_reach_internal_services(
    attack: Attack, internal_service: tuple[int, type[_Recorder]], host: str
) -> None:
    port, handler = internal_service
    text = _project(
        "ssrf",
        "    type: ETL\n    phases:\n"
        f"      extract: {{steps: [{{id: get, plugin: http_extract, args: {{url: 'http://{host}:{port}/admin'}}}}]}}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n",
    )
    attack.upload(text)
    run = attack.start("ssrf") if attack.saved("ssrf") else attack.force(text, "ssrf")
    run = wait(run)  # type: ignore[arg-type]
    assert run.state == "failed"
    assert "refused to connect" in everything_of(run)
    assert handler.hits == [], "the run reached the internal service"
    assert CANARY not in everything_of(run)


def test_sql_steps_cannot_reach_the_app_database_server(attack: Attack) -> None:
    text = _project(
        "pg",
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: q, plugin: sql_extract,"
        " args: {dsn: 'postgresql://postgres@127.0.0.1:5432/postgres', query: 'SELECT 1 AS x'}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n",
    )
    attack.upload(text)
    run = attack.start("pg") if attack.saved("pg") else attack.force(text, "pg")
    run = wait(run)  # type: ignore[arg-type]
    assert run.state == "failed" and "refused to connect to 127.0.0.1 port 5432" in everything_of(run)


# -- 6. secrets leak by transformation ------------------------------------------------------------------


SECRET = "hunter2-zq81Xw/pLm+77kk"


def test_a_secret_cannot_go_into_an_expression(attack: Attack) -> None:
    set_secret(attack.crew.other_team, "API", SECRET)
    text = "secrets:\n  API: {plugin: env_secret, args: {name: API}}\n---\n" + _project(
        "rev",
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: one, plugin: generate_rows, args: {rows: 1, columns: {x: '1'}}}]}\n"
        "      transform: {steps: [\n"
        "        {id: s, plugin: with_columns, args: {columns: {s: \"reverse('${{ secrets.API }}')\"}}},\n"
        "        {id: leak, plugin: cast_columns, args: {types: {s: int}}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n",
    )
    page = attack.upload(text)
    assert not attack.saved("rev")
    assert "field &#x27;columns&#x27; of plugin &#x27;with_columns&#x27; does not accept secrets" in page
    run = wait(attack.force(text, "rev"))
    assert run.state == "failed" and "does not accept secrets" in everything_of(run)
    stored = everything_of(run)
    for form in (SECRET, SECRET[::-1], "hunter2", "zq81Xw", quote(SECRET, safe="")):
        assert form not in stored


def test_every_form_of_a_secret_is_masked(
    attack: Attack, internal_service: tuple[int, type[_Recorder]], settings: Any
) -> None:
    """A server echoes the secret back URL-encoded, in base64 and in pieces: the error shows none of it."""
    import base64

    port, handler = internal_service
    settings.PIPEDECK_EGRESS_ALLOW = ["127.0.0.1"]
    handler.body = (
        f"bad token {quote(SECRET, safe='')} / {base64.b64encode(SECRET.encode()).decode()} / "
        "column 'hunter2' not found / zq81Xw"
    ).encode()
    set_secret(attack.crew.other_team, "API", SECRET)
    text = "secrets:\n  API: {plugin: env_secret, args: {name: API}}\n---\n" + _project(
        "echo",
        "    type: ETL\n    phases:\n"
        f"      extract: {{steps: [{{id: get, plugin: http_extract, args: {{url: 'http://127.0.0.1:{port}/x',"
        " headers: {X-Token: '${{ secrets.API }}'}, retries: 0}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n",
    )
    page = attack.upload(text)
    assert attack.saved("echo"), page
    run = wait(attack.start("echo"))  # type: ignore[arg-type]
    assert run.state == "failed" and handler.hits == ["/x"]
    stored = everything_of(run)
    assert "bad token ***" in stored
    for form in (SECRET, quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode(), "hunter2"):
        assert form not in stored, form


# -- 7. cancel does not stop work; no CPU, memory or time cap -------------------------------------------


HEAVY = (
    "    type: ETL\n    phases:\n"
    "      extract: {steps: [{id: rows, plugin: generate_rows, args: {rows: 200000, columns: {x: i}}}]}\n"
    "      transform: {steps: [{id: burn, plugin: sql_transform, args: {query:"
    " 'SELECT count(*) AS n FROM data a CROSS JOIN data b WHERE (a.x * b.x) % 7 = 3'}}]}\n"
    "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n"
)


def _wait_running(run: Run, step: str) -> None:
    deadline = time.monotonic() + 30
    while not StepRun.objects.filter(pipeline_run__run=run, step_id=step, state="running").exists():
        assert time.monotonic() < deadline, f"step {step} never started"
        time.sleep(0.02)


def test_cancel_ends_every_process_of_the_run(attack: Attack) -> None:
    from designer.runs.isolation import sandbox

    attack.upload(_project("burn", HEAVY))
    run = attack.start("burn")
    assert isinstance(run, Run)
    _wait_running(run, "burn")
    zygote = sandbox().pid
    assert zygote is not None and descendants(zygote), "the run has no process"
    response = attack.client.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code in (200, 302)
    cancelled_at = time.monotonic()
    while descendants(zygote):
        assert time.monotonic() - cancelled_at < 5, "a process of the cancelled run outlived it by 5 s"
        time.sleep(0.05)
    assert wait(run).state == "cancelled"


def test_a_run_over_its_cpu_limit_fails_and_says_so(attack: Attack) -> None:
    team = attack.crew.other_team
    team.run_cpu_seconds = 1
    team.save()
    attack.upload(_project("burn", HEAVY))
    run = wait(attack.start("burn"))  # type: ignore[arg-type]
    assert run.state == "failed"
    assert run.error == "CPU time limit of 1 s reached"


def test_a_run_over_its_memory_limit_fails_and_the_worker_goes_on(attack: Attack) -> None:
    team = attack.crew.other_team
    team.run_memory_mib = 1024
    team.save()
    hog = (
        "    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: rows, plugin: generate_rows,"
        " args: {rows: 400000000, columns: {x: i, y: 'i * 2'}}}]}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n"
    )
    attack.upload(_project("hog", hog))
    run = wait(attack.start("hog"))  # type: ignore[arg-type]
    assert run.state == "failed"
    assert "memory limit of 1024 MiB reached" in everything_of(run)
    after = wait(attack.start("rival_orders"))  # type: ignore[arg-type]
    assert after.state == "succeeded", after.error


# -- 8. one data root for all teams -----------------------------------------------------------------------


def test_a_team_reads_and_writes_only_its_own_data_root(attack: Attack) -> None:
    acme_root = team_data_root(attack.crew.team)
    (acme_root / "private.csv").write_text(f"x\n{CANARY}\n")
    rival_root = team_data_root(attack.crew.other_team)
    for path in ("../acme/private.csv", str(acme_root / "private.csv"), "private.csv"):
        text = _project(
            "steal",
            "    type: ETL\n    phases:\n"
            f"      extract: {{steps: [{{id: read, plugin: csv_extract, args: {{path: '{path}'}}}}]}}\n"
            "      load: {steps: [{id: out, plugin: csv_load, args: {path: stolen.csv}}]}\n",
        )
        attack.upload(text)
        run = attack.start("steal") if attack.saved("steal") else attack.force(text, "steal")
        run = wait(run)  # type: ignore[arg-type]
        assert run.state == "failed", path
        assert CANARY not in everything_of(run)
        assert not (rival_root / "stolen.csv").exists()
