"""Home and project pages: needs graph, concurrency, download and upload (errors, atomicity, round trip)."""

from __future__ import annotations

import copy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.editor.projects import export_project
from orchestrator.plugins.registry import registry
from orchestrator.yamlio import load_project
from tests.factory import SLEEP_SPEC, make_pipeline, sealed_preview

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def purl(project: Project, name: str) -> str:
    return reverse(name, kwargs={"team": project.team.slug, "project": project.slug})


def spec_needing(*needs: str) -> dict:  # type: ignore[type-arg]
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["needs"] = list(needs)
    return spec


def test_home_lists_my_teams_and_projects(alice_client, project, bob_client):
    assert "Sales" in alice_client.get("/").content.decode()
    assert "Sales" not in bob_client.get("/").content.decode()


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_page_and_login(client, alice):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_create_project_and_pipeline(alice_client, team):
    response = alice_client.post(
        reverse("designer-project-create", kwargs={"team": team.slug}), {"name": "Ops Data"}
    )
    project = Project.objects.get(team=team, slug="ops-data")
    assert response["Location"] == purl(project, "designer-project")
    response = alice_client.post(purl(project, "designer-pipeline-create"), {"name": "daily", "type": "ELT"})
    pipeline = Pipeline.objects.get(project=project, name="daily")
    assert response["Location"].endswith("/p/acme/ops-data/daily/")
    assert pipeline.type == "ELT" and not pipeline.is_valid


def test_invalid_pipeline_name_is_refused(alice_client, project):
    response = alice_client.post(purl(project, "designer-pipeline-create"), {"name": "2 bad"}, follow=True)
    assert "is not a valid pipeline name" in response.content.decode()
    assert not project.pipelines.exists()


def test_project_page_shows_pipelines_and_graph(alice_client, project):
    make_pipeline(project, "a")
    make_pipeline(project, "b", spec=spec_needing("a"))
    body = alice_client.get(purl(project, "designer-project")).content.decode()
    assert 'data-source="a" data-target="b"' in body
    assert purl(project, "designer-project-download") in body
    graph = alice_client.get(purl(project, "designer-project-graph")).json()
    assert graph["edges"] == [{"source": "a", "target": "b"}]


def test_adding_and_removing_a_needs_edge(alice_client, project):
    make_pipeline(project, "a")
    b = make_pipeline(project, "b")
    response = alice_client.post(
        purl(project, "designer-project-needs"), {"pipeline": "b", "needs": "a"}, **HX
    )
    assert response.status_code == 200 and b"<html" not in response.content
    b.refresh_from_db()
    assert b.needs == ["a"] and b.is_valid
    body = response.content.decode()  # the pipelines table's "needs" column follows, out of band
    assert '<table class="pipelines" id="pipeline-table" hx-swap-oob="true">' in body
    assert "<td>a</td>" in body
    alice_client.post(
        purl(project, "designer-project-needs"), {"pipeline": "b", "needs": "a", "action": "remove"}, **HX
    )
    b.refresh_from_db()
    assert b.needs == []


def test_a_cycle_is_refused_and_named(alice_client, project):
    make_pipeline(project, "a")
    make_pipeline(project, "b", spec=spec_needing("a"))
    make_pipeline(project, "c", spec=spec_needing("b"))
    response = alice_client.post(
        purl(project, "designer-project-needs"), {"pipeline": "a", "needs": "c"}, **HX
    )
    assert "that makes a cycle a -&gt; c -&gt; b -&gt; a" in response.content.decode()
    assert Pipeline.objects.get(project=project, name="a").needs == []


def test_concurrency_setting(alice_client, project):
    response = alice_client.post(purl(project, "designer-project-settings"), {"concurrency": "5"}, **HX)
    assert response.status_code == 200 and b"<html" not in response.content
    project.refresh_from_db()
    assert project.concurrency == 5
    response = alice_client.post(purl(project, "designer-project-settings"), {"concurrency": "0"}, **HX)
    assert "from 1 to 1000" in response.content.decode()


def test_download_is_stable_and_loads_back(alice_client, project):
    make_pipeline(project, "a")
    make_pipeline(project, "b", spec=spec_needing("a"))
    first = alice_client.get(purl(project, "designer-project-download"))
    second = alice_client.get(purl(project, "designer-project-download"))
    assert first["Content-Disposition"] == 'attachment; filename="sales.yaml"'
    assert first.content == second.content
    spec = load_project(first.content, registry=registry)
    assert set(spec.pipelines) == {"a", "b"} and spec.pipelines["b"].needs == ["a"]


def test_upload_round_trip_previews_then_creates_versions_and_keeps_variables(alice_client, project, team):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = Project.objects.get(slug="orders-demo")
    text = export_project(demo)
    upload = SimpleUploadedFile("demo.yaml", text.encode(), content_type="application/yaml")
    response = alice_client.post(purl(project, "designer-project-upload"), {"file": upload}, **HX)
    preview = response.content.decode()
    assert response.status_code == 200 and "Importing demo.yaml will:" in preview
    assert 'data-pipeline="orders_etl" data-change="added"' in preview
    assert 'data-variable="ORDERS_FILE" data-change="added"' in preview
    assert not project.pipelines.exists()  # a preview saves nothing
    assert "phases:" not in preview  # the file is not echoed in the page (it may hold secret values)
    response = alice_client.post(purl(project, "designer-project-upload"), sealed_preview(preview), **HX)
    assert response.status_code == 200 and response["HX-Redirect"] == purl(project, "designer-project")
    page = alice_client.get(purl(project, "designer-project")).content.decode()
    assert "Imported demo.yaml: created customers_etlt, orders_elt, orders_etl (a new version each)." in page
    project.refresh_from_db()
    assert project.variables == {"ORDERS_FILE": "orders.csv"}
    assert export_project(project) == text
    version = PipelineVersion.objects.get(pipeline__project=project, pipeline__name="orders_etl")
    assert version.message == "Imported from demo.yaml"
    # the same file again: nothing changes, so no identical versions
    upload = SimpleUploadedFile("demo.yaml", text.encode())
    response = alice_client.post(purl(project, "designer-project-upload"), {"file": upload}, **HX)
    assert "nothing to import" in response.content.decode()
    assert PipelineVersion.objects.filter(pipeline__project=project).count() == 3
    assert PipelineVersion.objects.filter(pipeline__project=project).count() == 3


BROKEN = """\
concurrency: 2
pipelines:
  good:
    type: ETL
    phases:
      extract:
        steps:
          - {id: a, plugin: sleep_extract}
      load:
        steps:
          - {id: b, plugin: sleep_load}
  bad:
    type: ETL
    phases:
      extract:
        steps:
          - {id: a, plugin: sleep_extractt}
      load:
        steps:
          - {id: b, plugin: sleep_load, args: {seconds: lots}}
"""


def test_upload_with_errors_saves_nothing_and_shows_every_error(alice_client, project):
    existing = make_pipeline(project, "good", spec=spec_needing())
    upload = SimpleUploadedFile("broken.yaml", BROKEN.encode())
    response = alice_client.post(purl(project, "designer-project-upload"), {"file": upload})
    body = response.content.decode()
    assert response.status_code == 400
    assert "broken.yaml: 2 problems. Nothing was saved." in body
    assert "line 17, column" in body and "unknown plugin &#x27;sleep_extractt&#x27;" in body
    assert "pipelines.bad.phases.load.steps[0].args.seconds" in body
    assert list(project.pipelines.values_list("name", flat=True)) == ["good"]
    assert existing.versions.count() == 1


def test_upload_of_a_syntax_error_shows_its_line(alice_client, project):
    upload = SimpleUploadedFile("bad.yaml", b"pipelines:\n  a: [\n")
    response = alice_client.post(purl(project, "designer-project-upload"), {"file": upload}, **HX)
    assert response.status_code == 200
    assert "line 3" in response.content.decode()
    assert not project.pipelines.exists()


def test_project_views_are_404_for_non_members(bob_client, project):
    for name in ["designer-project", "designer-project-graph", "designer-project-download"]:
        assert bob_client.get(purl(project, name)).status_code == 404
    for name in [
        "designer-project-needs",
        "designer-project-settings",
        "designer-project-upload",
        "designer-pipeline-create",
    ]:
        assert bob_client.post(purl(project, name), {}).status_code == 404
    response = bob_client.post(
        reverse("designer-project-create", kwargs={"team": project.team.slug}), {"name": "x"}
    )
    assert response.status_code == 404


def test_seed_demo_is_idempotent_and_valid():
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = Project.objects.get(slug="orders-demo")
    pipelines = {p.name: p for p in demo.pipelines.all()}
    assert {p.type for p in pipelines.values()} == {"ETL", "ELT", "ETLT"}
    assert all(p.is_valid and p.versions.count() == 1 for p in pipelines.values())


def test_admin_lists_the_designer_models(client, project):
    from django.contrib.auth.models import User

    admin = User.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    make_pipeline(project, "a")
    for model in ["team", "project", "pipeline", "pipelineversion"]:
        assert client.get(f"/admin/designer/{model}/").status_code == 200
    version = PipelineVersion.objects.get()
    assert client.get(f"/admin/designer/pipelineversion/{version.pk}/change/").status_code == 200


def test_upload_of_binary_garbage_is_an_error_not_a_crash(alice_client, project):
    upload = SimpleUploadedFile("x.yaml", b"\xff\xfe\x00garbage\x00")
    response = alice_client.post(purl(project, "designer-project-upload"), {"file": upload})
    assert response.status_code == 400
    assert "Nothing was saved" in response.content.decode()
