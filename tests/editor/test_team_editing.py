"""Issue 12, in the editor: concurrent editors (revisions, stale edits refused with a diff), undo and redo,
discard, the unsaved marker, no identical versions, the YAML tab as downloaded, imports that merge and
accept needs, and "Valid" never next to an error. Each numbered defect has a test that failed before."""

from __future__ import annotations

import copy
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from designer.editor import drafts, edits, pipelines as service, projects
from designer.editor.models import DraftEdit, Pipeline, PipelineVersion
from designer.editor.specs import dump_pipeline_yaml
from orchestrator import SpecError
from tests.factory import SLEEP_SPEC, add_member, make_pipeline, make_user, sealed_preview

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def url(pipeline: Pipeline, name: str) -> str:
    project = pipeline.project
    return reverse(
        name, kwargs={"team": project.team.slug, "project": project.slug, "pipeline": pipeline.name}
    )


def purl(project, name: str) -> str:  # type: ignore[no-untyped-def]
    return reverse(name, kwargs={"team": project.team.slug, "project": project.slug})


@pytest.fixture
def orders(project) -> Pipeline:  # type: ignore[no-untyped-def]
    return make_pipeline(project, "orders")


@pytest.fixture
def bob_editor(team, bob) -> Client:  # type: ignore[no-untyped-def]
    add_member(team, bob, "editor")
    client = Client()
    client.force_login(bob)
    return client


def add_filter(client: Client, pipeline: Pipeline, revision: int, client_id: str = "tab-a") -> str:
    data = {"phase": "transform", "slot": "steps", "plugin": "filter_rows", "revision": revision}
    return client.post(
        url(pipeline, "designer-step-add"), {**data, "client": client_id}, **HX
    ).content.decode()


# ---- 3. two tabs overwrite each other ---------------------------------------------------------------------


def test_defect_3_a_yaml_apply_made_before_a_change_is_refused_with_a_diff_not_applied(
    orders, alice_client, bob_editor
):
    """Tab B opened the YAML at revision 0; tab A then added a step; B's apply must not revert A's step."""
    yaml_at_open = service.pipeline_yaml(orders)
    add_filter(alice_client, orders, 0)
    orders.refresh_from_db()
    assert orders.revision == 1 and "transform" in orders.spec["phases"]
    stale_text = yaml_at_open.replace("seconds: 0.01", "seconds: 0.02", 1)
    body = bob_editor.post(
        url(orders, "designer-yaml"), {"yaml": stale_text, "revision": "0", "client": "tab-b"}, **HX
    ).content.decode()
    orders.refresh_from_db()
    assert "transform" in orders.spec["phases"], "the stale YAML reverted a colleague's change"
    assert orders.revision == 1
    assert "Not applied: alice changed this pipeline since you loaded it" in body
    assert 'id="conflict"' in body and re.search(r'<span class="add">\+ +transform:</span>', body)  # the diff
    assert stale_text.split("---")[-1].strip()[:40] in body  # the typed text is kept in the tab


def test_every_edit_carries_its_revision_and_a_stale_one_is_refused(orders, alice_client, bob_editor):
    add_filter(alice_client, orders, 0)
    body = add_filter(bob_editor, orders, 0, client_id="tab-b")
    orders.refresh_from_db()
    assert "Not applied: alice changed this pipeline" in body
    assert len(orders.spec["phases"]["transform"]["steps"]) == 1
    # the same tab's own edits in flight are not stale against each other
    add_filter(alice_client, orders, 0, client_id="tab-a")
    orders.refresh_from_db()
    assert len(orders.spec["phases"]["transform"]["steps"]) == 2 and orders.revision == 2


def test_a_stale_step_form_keeps_the_typed_values_and_says_why(orders, alice_client, bob_editor):
    add_filter(alice_client, orders, 0)
    form = {"phase": "extract", "id": "wait", "arg-seconds": "7", "revision": "0", "client": "tab-b"}
    body = bob_editor.post(url(orders, "designer-step-args"), form, **HX).content.decode()
    orders.refresh_from_db()
    assert orders.spec["phases"]["extract"]["steps"][0]["args"] == {"seconds": 0.01}
    assert 'id="step-conflict"' in body and 'value="7"' in body


def test_a_change_is_announced_to_the_pipelines_editors(orders, alice, django_capture_on_commit_callbacks):
    sent: list = []  # type: ignore[type-arg]
    from designer.runs import publish

    original = publish.publish_sync
    publish.publish_sync = sent.extend  # type: ignore[assignment]
    try:
        with django_capture_on_commit_callbacks(execute=True):
            service.edit(
                orders, lambda s: edits.remove_step(s, "load", "sink"), user=alice, label="Remove sink"
            )
    finally:
        publish.publish_sync = original
    ((group, message),) = sent
    assert group == drafts.pipeline_group(orders.pk)
    assert message == {
        "type": drafts.PIPELINE_CHANGED,
        "revision": 1,
        "by": "alice",
        "client": "",
        "label": "Remove sink",
    }


# ---- 5. no undo or discard; versions -----------------------------------------------------------------------


def test_defect_5_undo_and_redo_bring_a_removed_step_back_and_away(orders, alice_client):
    alice_client.post(
        url(orders, "designer-step-remove"), {"phase": "load", "id": "sink", "revision": "0"}, **HX
    )
    orders.refresh_from_db()
    assert orders.spec["phases"]["load"]["steps"] == []
    body = alice_client.post(url(orders, "designer-undo"), {"revision": "1"}, **HX).content.decode()
    orders.refresh_from_db()
    assert [s["id"] for s in orders.spec["phases"]["load"]["steps"]] == ["sink"]
    assert "Undone: Remove sink" in body and 'id="redo-button"' in body
    alice_client.post(url(orders, "designer-redo"), {"revision": "2"}, **HX)
    orders.refresh_from_db()
    assert orders.spec["phases"]["load"]["steps"] == [] and orders.revision == 3
    alice_client.post(url(orders, "designer-undo"), {"revision": "3"}, **HX)
    orders.refresh_from_db()
    assert [s["id"] for s in orders.spec["phases"]["load"]["steps"]] == ["sink"]


def test_undo_never_undoes_a_colleagues_later_change(orders, alice, bob, team):
    add_member(team, bob, "editor")
    service.edit(
        orders, lambda s: edits.add_step(s, "transform", "steps", "filter_rows"), user=alice, label="a"
    )
    service.edit(orders, lambda s: edits.remove_step(s, "load", "sink"), user=bob, label="b")
    with pytest.raises(drafts.StaleEdit, match="bob changed the pipeline after it"):
        service.undo(orders, alice)
    assert service.undo(orders, bob).label == "b"  # bob's own is his to undo
    assert service.undo(orders, alice).label == "a"  # and then alice's is back on top
    assert not orders.spec["phases"].get("transform")
    with pytest.raises(drafts.NothingToDo):
        service.undo(orders, alice)


def test_a_new_edit_drops_what_was_undone(orders, alice):
    service.edit(orders, lambda s: edits.remove_step(s, "load", "sink"), user=alice, label="x")
    service.undo(orders, alice)
    service.edit(orders, lambda s: edits.add_step(s, "transform", "steps", "filter_rows"), user=alice)
    assert drafts.undo_state(orders, alice).redo == ""
    with pytest.raises(drafts.NothingToDo):
        service.redo(orders, alice)


def test_defect_5_discard_draft_goes_back_to_the_latest_version_and_undo_brings_the_draft_back(
    orders, alice_client
):
    add_filter(alice_client, orders, 0)
    page = alice_client.get(url(orders, "designer-editor")).content.decode()
    assert 'id="unsaved"' in page and 'id="discard-button"' in page
    body = alice_client.post(url(orders, "designer-discard"), {"revision": "1"}, **HX).content.decode()
    orders.refresh_from_db()
    assert orders.spec == orders.latest_version().spec and "back to version 1" in body
    assert 'id="unsaved"' not in body
    alice_client.post(url(orders, "designer-undo"), {"revision": "2"}, **HX)
    orders.refresh_from_db()
    assert "transform" in orders.spec["phases"]


def test_defect_5_saving_with_no_change_makes_no_identical_version(orders, alice_client):
    body = alice_client.post(url(orders, "designer-save"), {"message": "again", "revision": "0"}, **HX)
    assert "Nothing to save: the draft is the same as version 1" in body.content.decode()
    assert orders.versions.count() == 1


def test_defect_5_the_status_says_unsaved_changes_instead_of_only_saved_n_minutes_ago(orders, alice_client):
    page = alice_client.get(url(orders, "designer-editor")).content.decode()
    assert "v1 saved" in page and 'id="unsaved"' not in page
    add_filter(alice_client, orders, 0)
    body = alice_client.get(url(orders, "designer-editor-canvas"), **HX).content.decode()
    assert 'id="unsaved"' in body and "unsaved changes" in body


def test_defect_5_remove_needs_no_confirmation_and_says_undo_brings_it_back(orders, alice_client):
    page = alice_client.get(url(orders, "designer-editor")).content.decode()
    remove = re.search(r'<button type="button" class="step-remove"[^>]*>', page)
    assert remove and "hx-confirm" not in remove.group(0)
    body = alice_client.post(url(orders, "designer-step-remove"), {"phase": "load", "id": "sink"}, **HX)
    assert "Removed sink: Undo (Ctrl+Z) brings it back." in body.content.decode()


def test_the_history_offers_a_way_back_to_the_latest_version(orders, alice_client):
    add_filter(alice_client, orders, 0)
    body = alice_client.get(url(orders, "designer-history"), **HX).content.decode()
    assert 'id="history-discard"' in body


def test_restoring_the_latest_versions_own_spec_is_refused(orders, alice):
    with pytest.raises(service.PipelineError, match="the same as the latest version"):
        service.restore(orders, 1, alice)


# ---- 6. the YAML tab ---------------------------------------------------------------------------------------


def test_defect_6_the_yaml_tab_shows_needs_as_the_download_does(project, alice_client):
    make_pipeline(project, "a")
    b = make_pipeline(project, "b", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["a"]})
    tab = alice_client.get(url(b, "designer-yaml"), **HX).content.decode()
    download = alice_client.get(url(b, "designer-pipeline-download")).content.decode()
    assert "needs:\n      - a" in download
    assert "needs:\n      - a" in tab.replace("&#x27;", "'")
    # and the tab's text applies back: its needs name a pipeline of the project
    service.apply_yaml(b, download, revision=0)
    assert b.needs == ["a"] and b.is_valid


def test_defect_6_a_failed_yaml_apply_replaces_the_green_notice(orders, alice_client):
    text = service.pipeline_yaml(orders)
    ok = alice_client.post(
        url(orders, "designer-yaml"), {"yaml": text, "revision": "0"}, **HX
    ).content.decode()
    assert 'id="notice" role="status">YAML applied' in ok
    bad = alice_client.post(
        url(orders, "designer-yaml"), {"yaml": text.replace("sleep_load", "sleep_lod"), "revision": "0"}, **HX
    ).content.decode()
    assert "The YAML was not applied: nothing changed." in bad
    assert 'class="notice notice-error" id="notice" role="status">The YAML was not applied' in bad
    assert "YAML applied" not in bad


def test_a_too_long_yaml_text_is_refused_with_its_limit(orders, alice_client):
    body = alice_client.post(url(orders, "designer-yaml"), {"yaml": "#" * 1_048_577}, **HX).content.decode()
    assert "the text is too long: 1,048,577 characters, the limit is 1,048,576" in body


# ---- 2 and 7. imports --------------------------------------------------------------------------------------

WITH_VARIABLES = """\
variables:
  OUT: out/a.csv
---
concurrency: 5
pipelines:
  a:
    type: ETL
    phases:
      extract: {steps: [{id: w, plugin: sleep_extract}]}
      load: {steps: [{id: s, plugin: csv_load, args: {path: '${{ variables.OUT }}'}}]}
"""
ONLY_A_PIPELINE = """\
pipelines:
  b:
    type: ETL
    needs: [a]
    phases:
      extract: {steps: [{id: w, plugin: sleep_extract}]}
      load: {steps: [{id: s, plugin: sleep_load}]}
"""


def test_defect_2_a_second_upload_merges_and_keeps_variables_and_concurrency(project, alice):
    projects.import_project(project, WITH_VARIABLES, "one.yaml", alice)
    projects.import_project(project, ONLY_A_PIPELINE, "two.yaml", alice)
    project.refresh_from_db()
    assert project.variables == {"OUT": "out/a.csv"} and project.concurrency == 5
    assert Pipeline.objects.get(project=project, name="a").is_valid


def test_defect_7_an_imported_pipeline_may_need_one_already_in_the_project(project, alice):
    make_pipeline(project, "a")
    result = projects.import_project(project, ONLY_A_PIPELINE, "two.yaml", alice)
    assert result.created == ["b"] and Pipeline.objects.get(project=project, name="b").needs == ["a"]


def test_an_import_still_refuses_a_need_that_is_nowhere_and_a_cycle_through_the_project(project, alice):
    with pytest.raises(SpecError, match="needs 'a', which is not a pipeline of this project"):
        projects.import_project(project, ONLY_A_PIPELINE, "two.yaml", alice)
    make_pipeline(project, "a", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["b"]})
    make_pipeline(project, "b")
    with pytest.raises(SpecError, match="cycle"):
        projects.import_project(project, ONLY_A_PIPELINE, "two.yaml", alice)


def test_the_upload_preview_lists_what_is_added_changed_kept_and_saves_nothing(project, alice_client):
    make_pipeline(project, "a")
    project.variables = {"OUT": "out/old.csv", "KEEP": 1}
    project.save()
    upload = SimpleUploadedFile("one.yaml", WITH_VARIABLES.encode())
    body = alice_client.post(
        purl(project, "designer-project-upload"), {"file": upload}, **HX
    ).content.decode()
    assert 'data-pipeline="a" data-change="changed"' in body
    assert 'add extract.w, load.s; <strong class="del">remove</strong> extract.wait, load.sink' in body
    assert 'data-variable="OUT" data-change="changed"' in body and "out/old.csv → out/a.csv" in body
    assert "concurrency: 2 → 5" in body and "variables KEEP" in body
    assert PipelineVersion.objects.filter(pipeline__project=project).count() == 1
    alice_client.post(purl(project, "designer-project-upload"), sealed_preview(body), **HX)
    project.refresh_from_db()
    assert project.variables == {"OUT": "out/a.csv", "KEEP": 1} and project.concurrency == 5


def test_an_apply_for_another_project_or_tampered_is_refused(project, alice_client, team):
    from tests.factory import make_project

    other = make_project(team, "Other")
    upload = SimpleUploadedFile("one.yaml", WITH_VARIABLES.encode())
    body = alice_client.post(purl(project, "designer-project-upload"), {"file": upload}, **HX).content
    response = alice_client.post(purl(other, "designer-project-upload"), sealed_preview(body), **HX)
    assert "This preview has expired: upload the file again." in response.content.decode()
    assert not other.pipelines.exists()


# ---- 8. "Valid" that is not --------------------------------------------------------------------------------


def test_defect_8_an_unfinished_sql_expression_and_a_path_out_of_the_data_root_are_errors(orders):
    def change(spec):  # type: ignore[no-untyped-def]
        step_id = edits.add_step(spec, "transform", "steps", "filter_rows")
        edits.set_step(spec, "transform", step_id, {"expr": "amount >"})
        edits.remove_step(spec, "extract", "wait")
        step_id = edits.add_step(spec, "extract", "steps", "csv_extract")
        edits.set_step(spec, "extract", step_id, {"path": "/etc/passwd"})

    service.edit(orders, change)
    messages = {e["path"]: e["message"] for e in orders.errors}
    assert not orders.is_valid
    assert "is not a valid SQL expression" in messages["phases.transform.steps[0].args.expr"]
    assert "outside the data root" in messages["phases.extract.steps[0].args.path"]


def test_defect_8_saved_is_not_green_next_to_field_errors(orders, alice_client):
    alice_client.post(url(orders, "designer-step-add"), {"phase": "transform", "plugin": "filter_rows"}, **HX)
    form = {"phase": "transform", "id": "filter_rows", "arg-expr": "amount >"}
    body = alice_client.post(url(orders, "designer-step-args"), form, **HX).content.decode()
    assert 'class="notice notice-ok" id="step-saved"' not in body
    assert "Saved as a draft, with problems" in body and "is not a valid SQL expression" in body
    assert 'id="validity">Valid<' not in body


def test_help_texts_render_their_code_spans_and_cards_summarise_as_text(project, alice_client):
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["phases"]["transform"] = {
        "steps": [{"id": "pick", "plugin": "select_columns", "args": {"columns": ["a", "b"]}}]
    }
    pipeline = make_pipeline(project, "cols", spec=spec)
    page = alice_client.get(url(pipeline, "designer-editor")).content.decode()
    assert '<span class="step-summary">columns: a, b</span>' in page
    form = alice_client.get(url(pipeline, "designer-step-form"), {"phase": "transform", "id": "pick"}, **HX)
    html = alice_client.get(
        url(pipeline, "designer-step-form"), {"phase": "transform", "id": "pick"}, **HX
    ).content.decode()
    assert form.status_code == 200
    sql = make_pipeline(
        project,
        "q",
        spec={
            **copy.deepcopy(SLEEP_SPEC),
            "phases": {
                **copy.deepcopy(SLEEP_SPEC["phases"]),
                "transform": {
                    "steps": [{"id": "q", "plugin": "sql_transform", "args": {"query": "SELECT 1"}}]
                },
            },
        },
    )
    html = alice_client.get(
        url(sql, "designer-step-form"), {"phase": "transform", "id": "q"}, **HX
    ).content.decode()
    assert "<code>data</code>" in html and "`data`" not in html


def test_the_extract_lane_does_not_count_the_merge_as_a_step(project, alice_client):
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["phases"]["extract"] = {
        "steps": [
            {"id": "a", "plugin": "sleep_extract", "args": {}},
            {"id": "b", "plugin": "sleep_extract", "args": {}},
        ],
        "merge": {"id": "m", "plugin": "concat_merge", "args": {}},
    }
    pipeline = make_pipeline(project, "two", spec=spec)
    page = alice_client.get(url(pipeline, "designer-editor")).content.decode()
    assert re.search(r"<h2>Extract</h2>\s*<span class=\"muted\">required · 2 steps</span>", page)


def test_every_text_input_of_the_editor_has_a_limit(orders, alice_client):
    body = alice_client.post(url(orders, "designer-set-details"), {"description": "x" * 2001}, **HX)
    assert "The description may hold up to 2,000 characters" in body.content.decode()
    body = alice_client.post(url(orders, "designer-save"), {"message": "m" * 501}, **HX)
    assert "The message may hold up to 500 characters" in body.content.decode()


def test_step_ids_and_argument_fields_have_limits(orders, alice_client):
    form = {"phase": "extract", "id": "wait", "new_id": "w" * 101}
    body = alice_client.post(url(orders, "designer-step-args"), form, **HX).content.decode()
    assert "a step id may hold up to 100 characters (got 101)" in body
    form = {"phase": "extract", "id": "wait", "arg-seconds": "1" * 100_001}
    body = alice_client.post(url(orders, "designer-step-args"), form, **HX).content.decode()
    assert "at most 100,000 characters (got 100,001): not saved" in body
    orders.refresh_from_db()
    assert orders.revision == 0


def test_the_log_of_changes_is_kept_bounded(orders, alice, monkeypatch):
    monkeypatch.setattr(drafts, "LOG_SIZE", 3)
    for seconds in range(5):
        service.edit(orders, lambda s, n=seconds: s["phases"]["load"]["steps"][0]["args"].update(seconds=n))
    assert list(DraftEdit.objects.filter(pipeline=orders).values_list("revision", flat=True)) == [3, 4, 5]
    assert drafts.spec_at(orders, 1) is None and drafts.spec_at(orders, 3) is not None


def test_the_standalone_dump_of_a_pipeline_keeps_its_needs():
    spec = {**copy.deepcopy(SLEEP_SPEC), "needs": ["a"]}
    from orchestrator import PipelineSpec

    text = dump_pipeline_yaml("b", PipelineSpec.model_validate(spec).model_dump(mode="json"))
    assert "needs:\n      - a\n" in text


def test_viewers_get_no_undo_and_cannot_post_it(orders, team):
    viewer = make_user("vic")
    add_member(team, viewer, "viewer")
    client = Client()
    client.force_login(viewer)
    page = client.get(url(orders, "designer-editor")).content.decode()
    assert 'id="undo-button"' not in page
    assert client.post(url(orders, "designer-undo"), **HX).status_code == 404
