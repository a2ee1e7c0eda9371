"""Issue 12, runs: what a run executes. Saved versions, not drafts (defect 4); templates run like any
pipeline (defect 1); a pipeline's upstream runs with it when asked or never succeeded (defect 9)."""

from __future__ import annotations

import copy
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from designer.editor import edits, pipelines as service
from designer.editor.models import Project
from designer.runs.launch import RunRefused, start_run
from designer.runs.models import PipelineRun, Run
from tests.factory import SLEEP_SPEC, make_pipeline

HX = {"HTTP_HX_REQUEST": "true"}


def needing(*names: str) -> dict:  # type: ignore[type-arg]
    return {**copy.deepcopy(SLEEP_SPEC), "needs": list(names)}


def start_url(project: Project) -> str:
    return reverse("designer-run-start", kwargs={"team": project.team.slug, "project": project.slug})


@pytest.mark.django_db
def test_defect_1_a_template_others_need_runs_with_the_project_and_by_itself(project, alice):
    make_pipeline(project, "base", is_template=True)
    make_pipeline(project, "report", spec=needing("base"))
    run = start_run(project, alice)
    assert set(run.spec["pipelines"]) == {"base", "report"}
    assert run.spec["pipelines"]["report"]["needs"] == ["base"]
    alone = start_run(project, alice, ["base"])
    assert alone.pipelines == ["base"]


@pytest.mark.django_db
def test_defect_4_runs_execute_the_latest_saved_version_not_the_draft(project, alice):
    pipeline = make_pipeline(project, "orders")
    service.edit(pipeline, lambda spec: edits.remove_step(spec, "load", "sink"))  # half-finished
    assert not pipeline.is_valid
    run = start_run(project, alice)
    assert run.versions == {"orders": 1} and not run.is_draft
    assert [s["id"] for s in run.spec["pipelines"]["orders"]["phases"]["load"]["steps"]] == ["sink"]


@pytest.mark.django_db
def test_run_draft_runs_the_draft_marked_as_such_and_refuses_an_invalid_one(project, alice, alice_client):
    pipeline = make_pipeline(project, "orders")
    service.edit(pipeline, lambda spec: spec["phases"]["load"]["steps"][0]["args"].update(seconds=0.02))
    run = start_run(project, alice, ["orders"], draft="orders")
    assert run.versions == {"orders": None} and run.is_draft
    assert run.spec["pipelines"]["orders"]["phases"]["load"]["steps"][0]["args"] == {"seconds": 0.02}
    page = alice_client.get(reverse("designer-run", args=[run.pk])).content.decode()
    assert 'id="run-draft"' in page
    service.edit(pipeline, lambda spec: edits.remove_step(spec, "load", "sink"))
    with pytest.raises(RunRefused, match="the draft of orders has errors"):
        start_run(project, alice, ["orders"], draft="orders")


@pytest.mark.django_db
def test_only_editors_may_run_a_draft(project, team, alice_client):
    from django.test import Client

    from tests.factory import add_member, make_user

    make_pipeline(project, "orders")
    runner = make_user("rita")
    add_member(team, runner, "runner")
    client = Client()
    client.force_login(runner)
    body = client.post(start_url(project), {"pipeline": "orders", "draft": "1"}, **HX).content.decode()
    assert "Only editors of this team can run a draft" in body and not Run.objects.exists()
    response = alice_client.post(start_url(project), {"pipeline": "orders", "draft": "1"}, **HX)
    assert "HX-Redirect" in response and Run.objects.get().is_draft


@pytest.mark.django_db
def test_with_upstream_runs_the_needs_closure_by_default_until_it_succeeded(project, alice):
    make_pipeline(project, "raw")
    make_pipeline(project, "clean", spec=needing("raw"))
    make_pipeline(project, "report", spec=needing("clean"))
    make_pipeline(project, "other")
    run = start_run(project, alice, ["report"])  # raw and clean never succeeded: they run first
    assert run.pipelines == ["clean", "raw", "report"]
    assert run.spec["pipelines"]["report"]["needs"] == ["clean"]
    assert run.spec["pipelines"]["clean"]["needs"] == ["raw"]
    PipelineRun.objects.filter(run=run).update(state="succeeded")
    assert start_run(project, alice, ["report"]).pipelines == ["report"]  # now: just it
    assert start_run(project, alice, ["report"], upstream=True).pipelines == ["clean", "raw", "report"]
    assert start_run(project, alice, ["clean"], upstream=False).pipelines == ["clean"]


@pytest.mark.django_db
def test_the_editor_offers_with_upstream_checked_while_an_upstream_never_succeeded(project, alice_client):
    make_pipeline(project, "raw")
    report = make_pipeline(project, "report", spec=needing("raw"))
    page = alice_client.get(report.editor_url()).content.decode()
    assert 'id="run-upstream" checked' in page and "with upstream (raw)" in page
    response = alice_client.post(start_url(project), {"pipeline": "report", "upstream": ["0"]}, **HX)
    assert Run.objects.get().pipelines == ["report"] and "HX-Redirect" in response


@pytest.mark.django_db(transaction=True)
def test_defect_9_the_demos_etlt_pipeline_run_alone_succeeds_on_a_fresh_demo(alice, worker_thread):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = Project.objects.get(slug="orders-demo")
    run = start_run(demo, alice, ["customers_etlt"], {"day": "2026-11-02"})
    assert run.pipelines == ["customers_etlt", "orders_elt"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not run.finished:
        time.sleep(0.1)
        run.refresh_from_db()
    assert run.state == "succeeded", run.error


@pytest.mark.django_db
def test_a_run_button_without_the_required_parameters_opens_the_run_form(alice, alice_client):
    from designer.teams.models import Membership

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = Project.objects.get(slug="orders-demo")
    Membership.objects.create(team=demo.team, user=alice, role="owner")
    response = alice_client.post(start_url(demo), {"pipeline": "customers_etlt"}, **HX)
    form = reverse("designer-run-form", kwargs={"team": demo.team.slug, "project": demo.slug})
    assert response["HX-Redirect"] == f"{form}?pipeline=customers_etlt"
