"""The editor's htmx endpoints: add, move, remove steps, set args, type, merge, YAML tab, save."""

from __future__ import annotations

import pytest
from django.urls import reverse

from designer.editor import pipelines as service
from designer.editor.models import Pipeline
from tests.factory import add_member, make_user

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def pipeline(project, alice):  # type: ignore[no-untyped-def]
    return service.create_pipeline(project, "orders", "ETL", alice)


def url(pipeline: Pipeline, name: str, **kw: object) -> str:
    project = pipeline.project
    return reverse(
        name, kwargs={"team": project.team.slug, "project": project.slug, "pipeline": pipeline.name, **kw}
    )


def post(client, pipeline, name, **data):  # type: ignore[no-untyped-def]
    response = client.post(url(pipeline, name), data, **HX)
    assert response.status_code == 200, response.content[:500]
    assert b"<html" not in response.content
    pipeline.refresh_from_db()
    return response


def build_etl(client, pipeline):  # type: ignore[no-untyped-def]
    post(client, pipeline, "designer-step-add", phase="extract", slot="steps", plugin="csv_extract", index=0)
    post(
        client, pipeline, "designer-step-add", phase="transform", slot="steps", plugin="filter_rows", index=0
    )
    post(client, pipeline, "designer-step-add", phase="load", slot="steps", plugin="csv_load", index=0)
    post(
        client,
        pipeline,
        "designer-step-args",
        phase="extract",
        id="csv_extract",
        **{"arg-path": "orders.csv"},
    )
    post(
        client,
        pipeline,
        "designer-step-args",
        phase="transform",
        id="filter_rows",
        **{"arg-expr": "amount > 10"},
    )
    post(client, pipeline, "designer-step-args", phase="load", id="csv_load", **{"arg-path": "out/big.csv"})


def test_it_shows_the_editor_with_palette_and_lanes(alice_client, pipeline):
    response = alice_client.get(url(pipeline, "designer-editor"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-plugin="csv_extract"' in body
    assert 'data-plugin="sleep_extract"' in body
    assert 'id="lane-extract"' in body and 'id="lane-transform"' in body and 'id="lane-load"' in body
    assert 'id="lane-transform_at_load"' not in body


def test_a_new_pipeline_is_a_draft_that_says_why(pipeline):
    assert not pipeline.is_valid
    assert any("at least one step" in e["message"] for e in pipeline.errors)


def test_building_a_pipeline_makes_it_valid(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    assert pipeline.is_valid, pipeline.errors
    phases = pipeline.spec["phases"]
    assert phases["extract"]["steps"][0] == {
        "id": "csv_extract",
        "plugin": "csv_extract",
        "args": {"path": "orders.csv"},
        "timeout": None,
        "retries": 0,
        "retry_backoff": 1.0,
    }
    assert phases["transform"]["steps"][0]["args"] == {"expr": "amount > 10"}


def test_a_step_with_a_missing_argument_shows_the_error_next_to_the_field(alice_client, pipeline):
    post(alice_client, pipeline, "designer-step-add", phase="extract", slot="steps", plugin="csv_extract")
    response = alice_client.get(url(pipeline, "designer-step-form") + "?phase=extract&id=csv_extract", **HX)
    body = response.content.decode()
    assert 'name="arg-path"' in body
    field = body[body.index('data-field="path"') :]
    field = field[: field.index("</div>", field.index("field-error"))]
    assert "missing required argument &#x27;path&#x27;" in field


def test_reordering_transform_steps(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    post(
        alice_client,
        pipeline,
        "designer-step-add",
        phase="transform",
        slot="steps",
        plugin="sort_rows",
        index=1,
    )
    ids = [s["id"] for s in pipeline.spec["phases"]["transform"]["steps"]]
    assert ids == ["filter_rows", "sort_rows"]
    post(
        alice_client,
        pipeline,
        "designer-step-move",
        phase="transform",
        id="sort_rows",
        to_phase="transform",
        to_slot="steps",
        to_index=0,
    )
    assert [s["id"] for s in pipeline.spec["phases"]["transform"]["steps"]] == ["sort_rows", "filter_rows"]


def test_removing_a_step(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    post(alice_client, pipeline, "designer-step-remove", phase="transform", id="filter_rows")
    assert pipeline.spec["phases"].get("transform") is None
    assert pipeline.is_valid


def test_a_plugin_of_the_wrong_kind_is_refused(alice_client, pipeline):
    response = post(
        alice_client, pipeline, "designer-step-add", phase="extract", slot="steps", plugin="csv_load"
    )
    assert "&#x27;csv_load&#x27; is a load plugin" in response.content.decode()
    assert pipeline.spec["phases"]["extract"]["steps"] == []


def test_merge_slot_appears_with_two_extract_steps(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    response = post(
        alice_client, pipeline, "designer-step-add", phase="extract", slot="steps", plugin="csv_extract"
    )
    assert 'data-slot="merge"' in response.content.decode()
    assert not pipeline.is_valid
    assert any("needs a 'merge' step" in e["message"] for e in pipeline.errors)
    post(alice_client, pipeline, "designer-set-merge", plugin="join_merge")
    assert pipeline.spec["phases"]["extract"]["merge"]["plugin"] == "join_merge"


def test_changing_type_needs_confirmation_when_steps_would_be_dropped(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    response = post(alice_client, pipeline, "designer-set-type", type="ELT")
    assert "would drop 1 step(s): transform.filter_rows" in response.content.decode()
    assert pipeline.type == "ETL"
    response = post(alice_client, pipeline, "designer-set-type", type="ELT", confirm="1")
    assert pipeline.type == "ELT"
    assert "transform" not in pipeline.spec["phases"] or pipeline.spec["phases"]["transform"] is None
    assert 'id="lane-transform_at_load"' in response.content.decode()


def test_yaml_tab_valid_edit_updates_the_lanes(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    text = service.pipeline_yaml(pipeline).replace("amount > 10", "amount > 99")
    response = post(alice_client, pipeline, "designer-yaml", yaml=text)
    assert pipeline.spec["phases"]["transform"]["steps"][0]["args"]["expr"] == "amount > 99"
    assert "amount &gt; 99" in response.content.decode()


def test_yaml_tab_invalid_edit_shows_the_line_and_changes_nothing(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    before = pipeline.spec
    text = service.pipeline_yaml(pipeline).replace("plugin: filter_rows", "plugin: filter_rowz")
    line = text.splitlines().index(next(x for x in text.splitlines() if "filter_rowz" in x)) + 1
    response = post(alice_client, pipeline, "designer-yaml", yaml=text)
    body = response.content.decode()
    assert response["HX-Retarget"] == "#yaml-panel"
    assert f"line {line}" in body and "unknown plugin &#x27;filter_rowz&#x27;" in body
    assert pipeline.spec == before


def test_save_creates_a_version_and_drafts_cannot_be_saved(alice_client, pipeline):
    response = post(alice_client, pipeline, "designer-save", message="first")
    assert "fix them before saving a version" in response.content.decode()
    assert pipeline.versions.count() == 0
    build_etl(alice_client, pipeline)
    post(alice_client, pipeline, "designer-save", message="first")
    version = pipeline.versions.get()
    assert (version.number, version.message, version.spec) == (1, "first", pipeline.spec)


def test_non_members_get_404_and_viewers_cannot_edit(bob_client, pipeline, team):
    for name in ["designer-editor", "designer-yaml", "designer-history", "designer-pipeline-download"]:
        assert bob_client.get(url(pipeline, name)).status_code == 404
    assert bob_client.post(url(pipeline, "designer-step-add"), {"phase": "extract"}).status_code == 404
    viewer = make_user("vera")
    add_member(team, viewer, "viewer")
    bob_client.force_login(viewer)
    assert bob_client.get(url(pipeline, "designer-editor")).status_code == 200
    response = bob_client.post(
        url(pipeline, "designer-step-add"), {"phase": "extract", "plugin": "csv_extract"}
    )
    assert response.status_code == 404


def test_anonymous_users_are_sent_to_login(client, pipeline):
    response = client.get(url(pipeline, "designer-editor"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_reorder_within_a_lane_answers_with_the_status_only(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    post(
        alice_client,
        pipeline,
        "designer-step-add",
        phase="transform",
        slot="steps",
        plugin="sort_rows",
        index=1,
    )
    data = {
        "phase": "transform",
        "id": "sort_rows",
        "slot": "steps",
        "to_phase": "transform",
        "to_slot": "steps",
    }
    response = post(alice_client, pipeline, "designer-step-move", **data, to_index=0)
    assert response["HX-Reswap"] == "none"
    body = response.content.decode()
    assert 'id="status" class="status" hx-swap-oob="true"' in body and 'id="canvas"' not in body
    assert [s["id"] for s in pipeline.spec["phases"]["transform"]["steps"]] == ["sort_rows", "filter_rows"]


def test_saving_args_swaps_only_that_steps_card(alice_client, pipeline):
    build_etl(alice_client, pipeline)
    response = post(
        alice_client,
        pipeline,
        "designer-step-args",
        phase="transform",
        id="filter_rows",
        **{"arg-expr": "a > 1"},
    )
    body = response.content.decode()
    assert 'id="step-transform-filter_rows" hx-swap-oob="true"' in body and 'id="canvas"' not in body
    assert 'id="step-saved"' in body
    # renaming the step re-renders the whole canvas (its id is in other steps' positions)
    response = post(
        alice_client,
        pipeline,
        "designer-step-args",
        phase="transform",
        id="filter_rows",
        new_id="big",
        **{"arg-expr": "a > 1"},
    )
    assert 'id="canvas"' in response.content.decode()
    assert pipeline.spec["phases"]["transform"]["steps"][0]["id"] == "big"
