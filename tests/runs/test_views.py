"""Run pages: start (roles, validity), detail, stored events, cancel, re-run / retry, dashboard."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import reverse

from designer.runs import dashboard, queue
from designer.runs.launch import start_run
from designer.runs.models import PipelineRun, Run, StepRun
from tests.factory import add_member, make_pipeline, make_user


def _start_url(project) -> str:  # type: ignore[no-untyped-def]
    return reverse("designer-run-start", kwargs={"team": project.team.slug, "project": project.slug})


@pytest.fixture
def runner_client(team, client):  # type: ignore[no-untyped-def]
    user = make_user("rita")
    add_member(team, user, "runner")
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(team, client):  # type: ignore[no-untyped-def]
    user = make_user("vera")
    add_member(team, user, "viewer")
    client.force_login(user)
    return client


def test_a_runner_starts_a_project_run_and_lands_on_its_page(sleep_project, runner_client):
    response = runner_client.post(_start_url(sleep_project), {"variables": "LIMIT=5\nNAME=x"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("designer-run", args=[run.pk])
    assert run.state == "queued" and run.pipelines == [] and list(run.spec["pipelines"]) == ["orders"]
    assert run.spec["variables"] == {"LIMIT": 5, "NAME": "x"} and run.versions == {"orders": 1}
    assert list(StepRun.objects.filter(pipeline_run__run=run).values_list("step_id", flat=True)) == [
        "wait",
        "sink",
    ]


def test_htmx_start_redirects_the_page_to_the_run(sleep_project, runner_client):
    response = runner_client.post(_start_url(sleep_project), {"pipeline": "orders"}, HTTP_HX_REQUEST="true")
    run = Run.objects.get()
    assert response["HX-Redirect"] == reverse("designer-run", args=[run.pk]) and run.pipelines == ["orders"]


def test_viewers_and_outsiders_cannot_start_runs(sleep_project, viewer_client, bob_client):
    assert viewer_client.post(_start_url(sleep_project)).status_code == 404
    assert bob_client.post(_start_url(sleep_project)).status_code == 404
    assert not Run.objects.exists()


def test_a_pipeline_never_saved_cannot_run_and_says_why(project, alice_client):
    make_pipeline(project, "orders")
    make_pipeline(project, "broken", spec={"type": "ETL", "phases": {}}, is_valid=False, version=False)
    response = alice_client.post(_start_url(project), HTTP_HX_REQUEST="true")
    assert "Cannot run: broken has no saved version yet: save it in the editor" in response.content.decode()
    assert response["HX-Retarget"] == "#run-message"
    assert not Run.objects.exists()
    ok = alice_client.post(_start_url(project), {"pipeline": "orders"})
    assert ok.status_code == 302 and Run.objects.count() == 1


def test_a_bad_variable_override_is_refused(sleep_project, alice_client):
    response = alice_client.post(
        _start_url(sleep_project), {"variables": "no equals sign"}, HTTP_HX_REQUEST="true"
    )
    assert "Variable override on line 1 must look like NAME=value" in response.content.decode()


def test_the_snapshot_does_not_change_when_the_pipeline_is_edited(sleep_project, alice):
    run = start_run(sleep_project, alice)
    pipeline = sleep_project.pipelines.get()
    pipeline.spec = {**pipeline.spec, "description": "edited"}
    pipeline.save()
    run.refresh_from_db()
    assert (
        "description" not in run.spec["pipelines"]["orders"]
        or run.spec["pipelines"]["orders"]["description"] is None
    )


def test_run_page_shows_boxes_to_members_and_404_to_others(sleep_project, alice, viewer_client, bob_client):
    run = start_run(sleep_project, alice)
    page = viewer_client.get(reverse("designer-run", args=[run.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-step="wait"' in html and 'data-state="queued"' in html
    assert 'id="cancel-run"' not in html  # a viewer cannot cancel
    assert bob_client.get(reverse("designer-run", args=[run.pk])).status_code == 404
    assert bob_client.get(reverse("designer-run-events", args=[run.pk])).status_code == 404


def test_events_endpoint_returns_stored_events_after_a_seq(sleep_project, alice, alice_client):
    from designer.runs import records

    run = start_run(sleep_project, alice)
    claim = queue.claim_next_run("w", 30)
    events = [{"kind": "run_started", "ts": 1.0, "pipelines": ["orders"]}] + [
        {
            "kind": "step_log",
            "ts": 2.0,
            "pipeline": "orders",
            "phase": "extract",
            "step": "wait",
            "level": "INFO",
            "message": f"m{i}",
        }
        for i in range(3)
    ]
    records.store_events(claim, 1, events)
    data = alice_client.get(reverse("designer-run-events", args=[run.pk]) + "?after=2").json()
    assert [e["seq"] for e in data["events"]] == [3, 4] and data["last_seq"] == 4 and data["more"] is False
    assert data["events"][0]["message"] == "m1"


def test_cancel_a_queued_run(sleep_project, alice, alice_client, viewer_client):
    run = start_run(sleep_project, alice)
    assert viewer_client.post(reverse("designer-run-cancel", args=[run.pk])).status_code == 404
    alice_client.post(reverse("designer-run-cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.state == "cancelled"
    assert set(StepRun.objects.filter(pipeline_run__run=run).values_list("state", flat=True)) == {"skipped"}
    assert run.events.get().kind == "run_finished"


def test_rerun_copies_the_snapshot_and_retry_takes_only_failed_pipelines(project, alice, alice_client):
    make_pipeline(project, "a")
    make_pipeline(project, "b")
    run = start_run(project, alice)
    PipelineRun.objects.filter(run=run, name="a").update(state="succeeded")
    PipelineRun.objects.filter(run=run, name="b").update(state="failed")
    Run.objects.filter(pk=run.pk).update(state="failed")
    alice_client.post(reverse("designer-run-rerun", args=[run.pk]))
    rerun = Run.objects.get(rerun_of=run)
    assert rerun.spec == run.spec and rerun.pipelines == []
    rerun.delete()
    alice_client.post(reverse("designer-run-rerun", args=[run.pk]), {"only_failed": "1"})
    retry = Run.objects.get(rerun_of=run)
    assert retry.pipelines == ["b"] and list(retry.spec["pipelines"]) == ["b"]


def test_dashboard_lists_and_filters_runs(sleep_project, alice, viewer_client, bob_client):
    first = start_run(sleep_project, alice)
    second = start_run(sleep_project, alice)
    Run.objects.filter(pk=first.pk).update(state="failed")
    url = reverse("designer-runs", kwargs={"team": sleep_project.team.slug})
    html = viewer_client.get(url).content.decode()
    assert f'data-run="{first.pk}"' in html and f'data-run="{second.pk}"' in html
    partial = viewer_client.get(url + "?state=failed", HTTP_HX_REQUEST="true").content.decode()
    assert (
        "<html" not in partial
        and f'data-run="{first.pk}"' in partial
        and f'data-run="{second.pk}"' not in partial
    )
    assert bob_client.get(url).status_code == 404


def test_dashboard_draws_duration_history(sleep_project, alice, alice_client):
    run = start_run(sleep_project, alice)
    PipelineRun.objects.filter(run=run).update(state="succeeded", duration=1.5)
    html = alice_client.get(
        reverse("designer-runs", kwargs={"team": sleep_project.team.slug})
    ).content.decode()
    assert 'class="duration-chart"' in html and "1.50 s" in html


def test_the_editor_include_shows_a_steps_state_in_the_latest_run(sleep_project, alice, alice_client):
    run = start_run(sleep_project, alice)
    StepRun.objects.filter(pipeline_run__run=run, step_id="wait").update(state="failed", error="boom")
    pipeline = sleep_project.pipelines.get()
    # the view passes the states (runs.dashboard.latest_step_states); the include only shows them
    states = dashboard.latest_step_states(pipeline)
    template = Template('{% include "runs/_step_state.html" %}')
    html = template.render(Context({"step_states": states, "step": {"phase": "extract", "id": "wait"}}))
    assert 'data-step-state="failed"' in html and "boom" in html
    unknown = {"step_states": states, "step": {"phase": "load", "id": "x"}}
    assert template.render(Context(unknown)).strip() == ""
    page = alice_client.get(pipeline.editor_url()).content.decode()
    assert 'data-step-state="failed"' in page and "boom" in page


def test_project_page_and_editor_offer_a_run_button_to_runners_only(
    sleep_project, alice_client, viewer_client
):
    team, project = sleep_project.team.slug, sleep_project.slug
    for url in (f"/p/{team}/{project}/", f"/p/{team}/{project}/orders/"):
        assert 'data-testid="run-button"' in alice_client.get(url).content.decode()
        assert 'data-testid="run-button"' not in viewer_client.get(url).content.decode()


def test_the_dashboard_offers_each_runnable_projects_pipelines_to_runners_only(
    sleep_project, alice_client, viewer_client
):
    url = reverse("designer-runs", kwargs={"team": sleep_project.team.slug})
    html = alice_client.get(url).content.decode()
    assert f'<option value="orders" data-project="{sleep_project.slug}">orders</option>' in html
    assert 'id="run-pipeline"' not in viewer_client.get(url).content.decode()


def test_the_editor_names_the_run_of_its_pipeline_in_progress(sleep_project, alice, alice_client):
    pipeline = sleep_project.pipelines.get()
    url = reverse(
        "designer-editor",
        kwargs={"team": sleep_project.team.slug, "project": sleep_project.slug, "pipeline": pipeline.name},
    )
    assert 'data-active-run=""' in alice_client.get(url).content.decode()
    run = start_run(sleep_project, alice)
    assert f'data-active-run="{run.pk}"' in alice_client.get(url).content.decode()
    Run.objects.filter(pk=run.pk).update(state="succeeded")
    assert 'data-active-run=""' in alice_client.get(url).content.decode()
