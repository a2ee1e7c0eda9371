"""Versions: history, diff between any two, restore as a new version; single-pipeline download."""

from __future__ import annotations

import copy

import pytest
from django.urls import reverse

from designer.editor import pipelines as service
from designer.editor.models import PipelineVersion
from orchestrator.plugins.registry import registry
from orchestrator.yamlio import load_project
from tests.factory import SLEEP_SPEC, make_pipeline

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def url(pipeline, name, **kw):  # type: ignore[no-untyped-def]
    p = pipeline.project
    return reverse(name, kwargs={"team": p.team.slug, "project": p.slug, "pipeline": pipeline.name, **kw})


@pytest.fixture
def versioned(project, alice):  # type: ignore[no-untyped-def]
    """A pipeline with versions 1 (0.01 s) and 2 (0.5 s)."""
    pipeline = make_pipeline(project, "orders")
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["phases"]["extract"]["steps"][0]["args"]["seconds"] = 0.5
    service.store(pipeline, spec)
    service.save_version(pipeline, alice, "slower")
    return pipeline


def test_versions_are_immutable(versioned):
    version = versioned.versions.get(number=1)
    version.message = "changed"
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_history_lists_versions(alice_client, versioned):
    response = alice_client.get(url(versioned, "designer-history"), **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "v2" in body and "slower" in body and "alice" in body and "Restore" in body


def test_diff_between_two_versions(alice_client, versioned):
    response = alice_client.get(url(versioned, "designer-diff") + "?a=1&b=2", **HX)
    body = response.content.decode()
    assert "<html" not in body
    assert "--- v1" in body and "+++ v2" in body
    assert '<span class="del">-              seconds: 0.01</span>' in body
    assert '<span class="add">+              seconds: 0.5</span>' in body
    assert service.diff_versions(versioned, 2, 2) == ""


def test_diff_with_the_draft_and_a_missing_version(versioned):
    assert service.diff_versions(versioned, 2, None) == ""
    with pytest.raises(service.PipelineError, match="there is no version 9"):
        service.diff_versions(versioned, 9, None)


def test_restore_creates_a_new_version(alice_client, versioned, alice):
    response = alice_client.post(url(versioned, "designer-restore", number=1), **HX)
    assert response.status_code == 200 and response["HX-Redirect"] == url(versioned, "designer-editor")
    versioned.refresh_from_db()
    latest = versioned.versions.get(number=3)
    assert latest.message == "Restored version 1" and latest.author == alice
    assert latest.spec == versioned.versions.get(number=1).spec == versioned.spec
    assert PipelineVersion.objects.filter(pipeline=versioned).count() == 3


def test_pipeline_download_loads_back_to_the_same_spec(alice_client, versioned):
    response = alice_client.get(url(versioned, "designer-pipeline-download"))
    assert response["Content-Disposition"] == 'attachment; filename="orders.yaml"'
    assert response.content == alice_client.get(url(versioned, "designer-pipeline-download")).content
    spec = load_project(response.content, registry=registry)
    assert spec.pipelines["orders"].model_dump(mode="json") == versioned.spec


def test_yaml_tab_and_canvas_are_partials(alice_client, versioned):
    for name in ["designer-yaml", "designer-editor-canvas"]:
        response = alice_client.get(url(versioned, name), **HX)
        assert response.status_code == 200 and b"<html" not in response.content
    assert b"plugin: sleep_extract" in alice_client.get(url(versioned, "designer-yaml"), **HX).content


def test_details_set_description_and_tags(alice_client, versioned):
    response = alice_client.post(
        url(versioned, "designer-set-details"), {"description": "Nightly", "tags": "a, b"}, **HX
    )
    assert response.status_code == 200
    versioned.refresh_from_db()
    assert versioned.spec["description"] == "Nightly" and versioned.tags == ["a", "b"]


def test_delete_removes_the_pipeline_and_the_edges_to_it(alice_client, project, versioned):
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["needs"] = ["orders"]
    other = make_pipeline(project, "after", spec=spec)
    response = alice_client.post(url(versioned, "designer-pipeline-delete"))
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.needs == [] and not project.pipelines.filter(name="orders").exists()


def test_version_views_are_404_for_non_members(bob_client, versioned):
    for name in ["designer-history", "designer-diff", "designer-editor-canvas", "designer-step-form"]:
        assert bob_client.get(url(versioned, name)).status_code == 404
    assert bob_client.post(url(versioned, "designer-restore", number=1)).status_code == 404
    for name in [
        "designer-save",
        "designer-set-type",
        "designer-set-merge",
        "designer-set-details",
        "designer-step-move",
        "designer-step-remove",
        "designer-step-args",
        "designer-pipeline-delete",
    ]:
        assert bob_client.post(url(versioned, name), {}).status_code == 404
