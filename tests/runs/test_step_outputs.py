"""Step outputs through the web app's runs: summaries stored with the run, Parquet kept in the team's data
root, the output panel, Resume, "Run from here", previews, and the retention rule."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from designer.editor import pipelines as pipeline_service
from designer.runs import dashboard, launch, resume, retention
from designer.runs.isolation import team_data_root
from designer.runs.launch import RunRefused
from designer.runs.models import Run, RunEvent, RunKind, StepOutput, StepRun
from designer.runs.outputs import known_columns, outputs_path
from tests.factory import make_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def own_data_root(settings: Any, tmp_path: Path) -> None:
    """Each test's teams get a fresh data root (runs keep their outputs there)."""
    settings.PIPEDECK_DATA_ROOT = tmp_path


def spec(path: str = "out/orders.csv", expr: str = "amount > 10") -> dict[str, Any]:
    columns = {"id": "row_number", "amount": "i * 10", "note": "CASE WHEN i % 2 = 0 THEN NULL ELSE 'x' END"}
    return {
        "type": "ETL",
        "phases": {
            "extract": {
                "steps": [{"id": "gen", "plugin": "generate_rows", "args": {"rows": 30, "columns": columns}}]
            },
            "transform": {
                "steps": [
                    {"id": "big", "plugin": "filter_rows", "args": {"expr": expr}},
                    {"id": "eur", "plugin": "with_columns", "args": {"columns": {"eur": "amount + 1"}}},
                ]
            },
            "load": {"steps": [{"id": "write", "plugin": "csv_load", "args": {"path": path}}]},
        },
    }


def wait_finished(run_id: int, timeout: float = 30.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.finished:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


def states(run: Run) -> dict[str, str]:
    return dict(StepRun.objects.filter(pipeline_run__run=run).values_list("step_id", "state"))


def test_every_step_output_is_stored_with_the_run_and_kept_for_resume(
    project, alice, alice_client, worker_thread
):
    make_pipeline(project, "orders", spec=spec())
    run = wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    assert run.state == "succeeded" and run.keep_outputs and run.outputs_kept
    outputs = {o.step_id: o for o in StepOutput.objects.filter(run=run)}
    assert list(outputs) == ["gen", "big", "eur"]
    eur = outputs["eur"]
    assert eur.rows == 28 and eur.nulls == {"id": 0, "amount": 0, "note": 14, "eur": 0}
    assert eur.columns == [["id", "Int64"], ["amount", "Int64"], ["note", "String"], ["eur", "Int64"]]
    assert eur.sample[0] == [3, 20, None, 21] and len(eur.sample) == 28
    assert not RunEvent.objects.filter(run=run, payload__has_key="sample").exists()  # not in the events
    folder = outputs_path(run) / "orders"
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        "extract.gen.parquet",
        "transform.big.parquet",
        "transform.eur.parquet",
    ]
    page = alice_client.get(f"/runs/{run.pk}/output/", {"pipeline": "orders", "step": "transform.eur"})
    html = page.content.decode()
    assert page.status_code == 200 and "<html" not in html
    assert 'class="sample"' in html and "Int64" in html and 'class="null">null<' in html
    known = known_columns(project.pk, "orders", spec())
    assert known["transform.big"] == ["id", "amount", "note"]
    assert "transform.big" not in known_columns(
        project.pk, "orders", spec(expr="amount > 11")
    )  # changed since


def test_a_failed_step_shows_its_input_and_resume_runs_from_it(project, alice, alice_client, worker_thread):
    blocked = team_data_root(project.team) / "out" / "blocked.csv"
    blocked.mkdir(parents=True, exist_ok=True)  # the load's target is a directory: it fails
    make_pipeline(project, "orders", spec=spec(path="out/blocked.csv"))
    failed = wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    assert failed.state == "failed" and states(failed)["write"] == "failed"
    html = alice_client.get(
        f"/runs/{failed.pk}/output/", {"pipeline": "orders", "step": "load.write"}
    ).content.decode()
    assert "is a directory" in html and "What it read: transform · eur" in html and 'class="sample"' in html

    blocked.rmdir()  # the cause fixed
    response = alice_client.post(f"/runs/{failed.pk}/resume/", HTTP_HX_REQUEST="true")
    resumed = Run.objects.get(pk=response["HX-Redirect"].strip("/").split("/")[-1])
    resumed = wait_finished(resumed.pk)
    assert resumed.state == "succeeded" and resumed.resumed_from_id == failed.pk
    assert states(resumed) == {"gen": "reused", "big": "reused", "eur": "reused", "write": "succeeded"}
    assert (team_data_root(project.team) / "out" / "blocked.csv").read_text().count("\n") == 29
    reused = StepOutput.objects.get(run=resumed, step_id="gen")
    assert reused.reused and reused.rows == 30
    assert "resumed from" in alice_client.get(f"/runs/{resumed.pk}/").content.decode()


def test_resume_is_refused_once_the_outputs_expired(project, alice, worker_thread, settings):
    make_pipeline(project, "orders", spec=spec(expr="nope > 1"))
    failed = wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    assert failed.state == "failed" and failed.outputs_kept
    done = retention.clean(
        now=timezone.now() + dt.timedelta(days=settings.PIPEDECK_OUTPUTS_RETENTION_DAYS + 1)
    )
    assert failed.pk in done.expired and not outputs_path(failed).exists()
    with pytest.raises(RunRefused, match="no kept outputs any more"):
        resume.resume(Run.objects.get(pk=failed.pk), alice)


def test_run_from_here_is_refused_after_an_edit_before_the_step(project, alice, worker_thread):
    pipeline = make_pipeline(project, "orders", spec=spec())
    wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    changed = spec(expr="amount > 100")
    pipeline_service.store(pipeline, changed)
    pipeline_service.save_version(pipeline, alice)
    with pytest.raises(RunRefused, match=r"changed before step 'eur'.*'big' \(transform\) changed"):
        resume.run_from_step(pipeline, alice, "transform.eur")
    run = wait_finished(resume.run_from_step(pipeline, alice, "transform.big").pk)  # the edited step itself
    assert run.state == "succeeded" and states(run)["gen"] == "reused" and states(run)["big"] == "succeeded"
    assert StepOutput.objects.get(run=run, step_id="eur").rows == 19


def test_a_preview_runs_the_draft_up_to_its_step_on_limited_rows_and_is_not_listed(
    project, alice, alice_client, worker_thread, settings
):
    settings.PIPEDECK_PREVIEW_ROWS = 10
    pipeline = make_pipeline(project, "orders", spec=spec(path="out/never.csv"))
    draft = spec(path="out/never.csv")
    draft["phases"]["transform"]["steps"][1]["args"] = {}  # a later step not designed yet: cut away
    pipeline_service.store(pipeline, draft)
    response = alice_client.post(
        "/p/acme/sales/orders/-/preview/", {"phase": "transform", "id": "big"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "output-waiting" in response.content.decode()
    run = Run.objects.get(kind=RunKind.PREVIEW)
    run = wait_finished(run.pk)
    assert run.state == "succeeded" and run.preview_step == "transform.big"
    assert [(o.step_id, o.rows) for o in StepOutput.objects.filter(run=run)] == [("gen", 10), ("big", 8)]
    assert not (team_data_root(project.team) / "out" / "never.csv").exists()
    assert not outputs_path(run).exists()  # a preview writes nothing
    html = alice_client.get(
        f"/runs/{run.pk}/output/", {"pipeline": "orders", "step": "transform.big"}
    ).content.decode()
    assert 'class="sample"' in html and "output-waiting" not in html
    assert dashboard.filtered_runs(project.team, dashboard.RunFilters(period="all")) == []
    assert dashboard.latest_step_states(pipeline) == {}


def test_the_team_cap_removes_the_oldest_kept_outputs_first(project, alice, worker_thread, settings):
    make_pipeline(project, "orders", spec=spec())
    first = wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    second = wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    size = retention.folder_size(outputs_path(second))
    settings.PIPEDECK_OUTPUTS_TEAM_MAX_MB = 0
    assert size > 0 and retention.clean().over_cap == [first.pk, second.pk]
    assert not Run.objects.filter(outputs_kept=True).exists()
    stray = team_data_root(project.team) / ".outputs" / "run-999999"
    stray.mkdir(parents=True)
    Path(stray / "x.parquet").write_bytes(b"x")
    Run.objects.filter(pk=first.pk).update(outputs_kept=True)  # one kept run left, so its team is looked at
    assert retention.clean().orphans == 1 and not stray.exists()


def test_the_clean_outputs_command(db: Any) -> None:
    from django.core.management import call_command

    call_command("clean_outputs", stdout=(out := __import__("io").StringIO()))
    assert out.getvalue().startswith("Cleaned:")


def test_output_view_of_another_team_is_404(project, alice, bob_client: Client) -> None:
    make_pipeline(project, "orders")
    run = launch.start_run(project, alice, ["orders"])
    assert (
        bob_client.get(f"/runs/{run.pk}/output/", {"pipeline": "orders", "step": "extract.wait"}).status_code
        == 404
    )


def test_the_next_steps_form_offers_the_columns_and_validation_flags_a_gone_one(
    project, alice, alice_client, worker_thread
):
    pipeline = make_pipeline(project, "orders", spec=spec())
    form = alice_client.get("/p/acme/sales/orders/steps/form/", {"phase": "transform", "id": "eur"})
    assert "column-picks" not in form.content.decode()  # nothing known before a run
    wait_finished(launch.start_run(project, alice, ["orders"]).pk)
    html = alice_client.get(
        "/p/acme/sales/orders/steps/form/", {"phase": "transform", "id": "eur"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-testid="column-picks"' in html and 'data-column="note"' in html
    assert "It reads: id, amount, note" in html
    draft = spec()
    draft["phases"]["transform"]["steps"].append(
        {"id": "keep", "plugin": "select_columns", "args": {"columns": ["id", "notes"]}}
    )
    checked = pipeline_service.store(pipeline, draft)
    assert [e["message"] for e in checked.errors] == [
        "column 'notes' is not produced by the previous step 'eur' (its columns: id, amount, note, eur)"
    ]


def test_a_project_that_does_not_keep_outputs(project, alice, alice_client) -> None:
    url = "/p/acme/sales/-/settings/"
    response = alice_client.post(
        url, {"concurrency": "2", "keep_outputs_present": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and 'id="keep-outputs"' in response.content.decode()
    project.refresh_from_db()
    assert project.keep_outputs is False
    make_pipeline(project, "orders")
    assert launch.start_run(project, alice, ["orders"]).keep_outputs is False


def test_known_columns_come_from_the_newest_run_that_ran_each_step_as_it_is_now(project) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_pipeline(project, "orders", spec=spec())

    def ran(pipeline_spec: dict[str, Any], columns: dict[str, list[str]]) -> None:
        run = Run.objects.create(
            team=project.team, project=project, spec={"pipelines": {"orders": pipeline_spec}}, versions={}
        )
        StepOutput.objects.bulk_create(
            StepOutput(
                run=run,
                pipeline="orders",
                phase=key.split(".")[0],
                step_id=key.split(".")[1],
                columns=[[c, "Int64"] for c in names],
            )
            for key, names in columns.items()
        )

    ran(spec(), {"extract.gen": ["old"], "transform.big": ["then"], "transform.eur": ["then"]})
    for _ in range(40):  # many later runs of another version of the filter
        ran(spec(expr="amount > 99"), {"extract.gen": ["id"], "transform.big": ["other"]})
    with CaptureQueriesContext(connection) as queries:
        known = known_columns(project.pk, "orders", spec())
    # gen is unchanged: the newest run tells it; big and eur: only the oldest run ran them as they are now
    assert known == {"extract.gen": ["id"], "transform.big": ["then"], "transform.eur": ["then"]}
    assert len(queries) <= 2 + 41 // 8 + 1  # the outputs, the specs 8 runs at a time, the chosen columns
