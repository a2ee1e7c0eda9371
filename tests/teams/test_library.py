"""The team library: search by name, tag, plugin and author; templates; use template; copy to team."""

from __future__ import annotations

import copy

from designer.editor.models import Pipeline, PipelineVersion
from designer.runs.models import Run
from designer.teams import activity, library
from designer.teams.models import ActivityEvent
from tests.factory import SLEEP_SPEC, add_member, make_pipeline, make_project

HX = {"HTTP_HX_REQUEST": "true"}


def _csv_spec() -> dict:
    spec = copy.deepcopy(SLEEP_SPEC)
    spec["phases"]["extract"]["steps"][0] = {"id": "read", "plugin": "csv_extract", "args": {"path": "a.csv"}}
    return spec


def _names(pipelines) -> list[str]:
    return sorted(p.name for p in pipelines)


def test_search_by_name_tag_plugin_and_author(crew):
    editor = crew.users["editor"]
    make_pipeline(
        crew.project, "daily_customers", tags=["crm", "daily"], created_by=editor, description="CRM sync"
    )
    make_pipeline(crew.project, "csv_import", spec=_csv_spec(), tags=["files"])
    search = lambda **kw: _names(library.search_pipelines(crew.team, library.LibraryQuery(**kw)))  # noqa: E731
    assert search() == ["csv_import", "daily_customers", "orders"]
    assert search(text="CUSTOM") == ["daily_customers"]
    assert search(text="crm sync") == ["daily_customers"]
    assert search(tag="Daily") == ["daily_customers"]
    assert search(plugin="csv_extract") == ["csv_import"]
    assert search(plugin="sleep_load") == ["csv_import", "daily_customers", "orders"]
    assert search(author="edit") == ["daily_customers"]
    assert search(tag="crm", plugin="csv_extract") == []
    facets = library.facets(crew.team)
    assert facets["tags"] == ["crm", "daily", "files"]
    assert "csv_extract" in facets["plugins"] and facets["authors"] == ["editor"]


def test_the_library_page_searches_with_htmx_and_never_shows_other_teams(crew):
    make_pipeline(crew.project, "daily_customers", tags=["crm"])
    client = crew.client("viewer")
    page = client.get("/t/acme/library/").content.decode()
    assert "daily_customers" in page and "orders" in page and "rival_orders" not in page
    response = client.get(
        "/t/acme/library/?tag=crm", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="library-results"
    )
    body = response.content.decode()
    assert "<html" not in body and "daily_customers" in body and 'data-pipeline="orders"' not in body
    assert "Use template" not in body and "Mark as template" not in body  # viewers get no edit actions


def test_an_editor_marks_a_template_and_uses_it_with_a_free_name(crew):
    client = crew.client("editor")
    response = client.post("/p/acme/sales/orders/template/", {"is_template": "1"}, **HX)
    assert b"Stop sharing as template" in response.content
    assert Pipeline.objects.get(name="orders").is_template
    response = client.post("/p/acme/sales/orders/use/", {"project": "sales"})
    created = Pipeline.objects.get(project=crew.project, name="orders_2")
    assert response.status_code == 302 and response["Location"] == "/p/acme/sales/orders_2/"
    version = created.versions.get()
    assert (version.number, version.message, version.author) == (
        1,
        "Created from template orders",
        crew.users["editor"],
    )
    assert created.spec == Pipeline.objects.get(name="orders").spec and not created.is_template
    assert ActivityEvent.objects.filter(verb="used_template", object_name="orders_2").exists()


def test_use_template_keeps_the_name_when_free_and_drops_unknown_needs(crew):
    spec = copy.deepcopy(SLEEP_SPEC) | {"needs": ["orders"]}
    template = make_pipeline(crew.project, "nightly", spec=spec, is_template=True)
    target = make_project(crew.team, "Marketing")
    created = library.use_template(template, target, crew.users["editor"])
    assert created.name == "nightly" and created.spec["needs"] == []
    assert "dropped needs not in this project: orders" in created.versions.get().message


def test_a_pipeline_that_is_not_a_template_cannot_be_used(crew):
    assert crew.client("editor").post("/p/acme/sales/orders/use/", {"project": "sales"}).status_code == 404


def test_copy_to_team_needs_editor_in_the_target_team(crew):
    outsider_client = crew.client("outsider")
    # the outsider cannot even see Acme's pipeline
    assert outsider_client.get("/p/acme/sales/orders/copy/").status_code == 404
    # an Acme viewer who is also a Rival viewer cannot copy into Rival
    viewer = crew.users["viewer"]
    add_member(crew.other_team, viewer, "viewer")
    client = crew.client("viewer")
    assert 'value="rival/secret-plans"' not in client.get("/p/acme/sales/orders/copy/").content.decode()
    assert client.post("/p/acme/sales/orders/copy/", {"target": "rival/secret-plans"}).status_code == 404
    assert not Pipeline.objects.filter(project=crew.other_project, name="orders").exists()
    # as a Rival editor the copy works, version 1 says where it came from
    crew.other_team.memberships.filter(user=viewer).update(role="editor")
    client = crew.client("viewer")
    response = client.post("/p/acme/sales/orders/copy/", {"target": "rival/secret-plans"})
    copied = Pipeline.objects.get(project=crew.other_project, name="orders")
    assert response["Location"] == "/p/rival/secret-plans/orders/"
    assert copied.versions.get().message == "Copied from Acme / Sales / orders"
    assert ActivityEvent.objects.get(verb="copied").team == crew.other_team


def test_the_activity_feed_shows_who_did_what(crew):
    crew.client("owner").post("/t/acme/secrets/", {"name": "TOKEN", "value": "tok-123"})
    crew.client("editor").post("/p/acme/sales/orders/template/", {"is_template": "1"})
    page = crew.client("viewer").get("/t/acme/activity/").content.decode()
    assert "editor</strong> marked as a template" in page
    assert "owner</strong> set secret" in page and "TOKEN" in page and "tok-123" not in page
    rival_feed = crew.client("outsider").get("/t/rival/activity/").content.decode()
    assert "rival_orders" in rival_feed and "TOKEN" not in rival_feed and "Sales" not in rival_feed


def test_pipelines_versions_and_runs_feed_the_activity_with_their_author(crew):
    editor, runner = crew.users["editor"], crew.users["runner"]
    pipeline = make_pipeline(crew.project, "nightly", created_by=editor, version=False)
    activity.version_saved(
        PipelineVersion.objects.create(
            pipeline=pipeline, number=1, spec=pipeline.spec, author=editor, message="first"
        )
    )
    imported = PipelineVersion.objects.create(
        pipeline=pipeline, number=2, spec=pipeline.spec, author=editor, message="Imported from x.yaml"
    )
    activity.version_saved(imported, "imported")
    run = Run.objects.create(
        team=crew.team, project=crew.project, spec={}, pipelines=["nightly"], created_by=runner
    )
    activity.run_started(run)
    Run.objects.create(team=crew.team, project=crew.project, spec={}, pipelines=["nightly"])  # no record
    feed = [
        (e.actor, e.verb, e.object_name, e.detail)
        for e in ActivityEvent.objects.filter(team=crew.team).order_by("pk")
        if "nightly" in e.object_name
    ]
    assert feed == [
        (editor, "created", "Sales / nightly", ""),
        (editor, "changed", "Sales / nightly", "version 1: first"),
        (editor, "imported", "Sales / nightly", "version 2: Imported from x.yaml"),
        (runner, "ran", f"#{run.pk} Sales: nightly", ""),
    ]
    assert ActivityEvent.objects.get(verb="ran").object_url == f"/runs/{run.pk}/"


def test_a_copy_is_recorded_once_as_used_template(crew):
    Pipeline.objects.filter(name="orders").update(is_template=True)
    crew.client("editor").post("/p/acme/sales/orders/use/", {"project": "sales"})
    verbs = list(
        ActivityEvent.objects.filter(object_name__contains="orders_2").values_list("verb", flat=True)
    )
    assert verbs == ["used_template"]


def test_projects_match_by_their_own_text_or_by_a_matching_pipeline(crew):
    make_project(crew.team, "Marketing", description="campaign data")
    make_pipeline(crew.project, "daily_customers", tags=["crm"])
    projects = lambda **kw: [p.name for p in library.search_projects(crew.team, library.LibraryQuery(**kw))]  # noqa: E731
    assert projects() == ["Marketing", "Sales"]
    assert projects(text="campaign") == ["Marketing"]
    assert projects(text="customers") == ["Sales"]
    assert projects(tag="crm") == ["Sales"]
    assert projects(templates_only=True) == []


def test_the_editor_offers_the_template_toggle_to_editors_only(crew):
    url = "/p/acme/sales/orders/"
    assert "Mark as template" in crew.client("editor").get(url).content.decode()
    assert "Mark as template" not in crew.client("viewer").get(url).content.decode()
    assert crew.client("editor").post(f"{url}template/", {"is_template": "1"}).status_code in (200, 302)
    assert "Stop sharing as template" in crew.client("editor").get(url).content.decode()
