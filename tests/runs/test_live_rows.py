"""The dashboard's rows are rendered once, on the server: the page and the team's runs websocket use the
same partial; the pages read what they show in their views (no queries from template tags)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from designer.routing import websocket_urlpatterns
from designer.runs import dashboard, groups, launch
from designer.runs.launch import start_run
from designer.runs.models import Run
from tests.runs.conftest import session_headers

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
def _fresh_layer(fresh_layer):  # type: ignore[no-untyped-def]
    """Every test here gets its own in-memory layer."""


def _dashboard(client: Client, run: Run) -> str:
    return client.get(reverse("designer-runs", kwargs={"team": run.team.slug})).content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_team_socket_pushes_the_row_the_dashboard_renders(sleep_project, alice):
    comm = WebsocketCommunicator(
        application,
        f"/ws/teams/{sleep_project.team.slug}/runs/",
        headers=await sync_to_async(session_headers)(alice),
    )
    assert (await comm.connect())[0]
    run = await sync_to_async(start_run)(sleep_project, alice)
    queued = await comm.receive_json_from(timeout=2)
    assert queued["type"] == "run" and queued["run"]["id"] == run.pk
    assert f'<tr data-run="{run.pk}" data-state="queued">' in queued["html"]
    assert '<span class="badge state-queued">queued</span>' in queued["html"]

    client = Client()
    await sync_to_async(client.force_login)(alice)
    page = await sync_to_async(_dashboard)(client, run)
    assert queued["html"] in page  # the very row the page shows

    assert await sync_to_async(launch.cancel)(run)
    cancelled = await comm.receive_json_from(timeout=2)
    assert cancelled["run"]["state"] == "cancelled"
    assert f'<tr data-run="{run.pk}" data-state="cancelled">' in cancelled["html"]
    await comm.disconnect()


@pytest.mark.django_db
def test_the_update_message_carries_the_rendered_row(sleep_project, alice):
    run = Run.objects.select_related("project").get(pk=start_run(sleep_project, alice).pk)
    group, message = groups.run_update_message(run)
    assert group == groups.team_runs_group(run.team_id)
    assert message["run"] == run.summary() and message["html"] == dashboard.run_row_html(run)
    assert f'href="{reverse("designer-run", args=[run.pk])}"' in message["html"]


@pytest.mark.django_db
def test_the_dashboard_reads_the_nav_and_rows_in_a_fixed_number_of_queries(
    sleep_project, alice, alice_client, django_assert_max_num_queries
):
    runs = [start_run(sleep_project, alice) for _ in range(5)]
    alice_client.get(reverse("designer-runs", kwargs={"team": sleep_project.team.slug}))
    # session, user, membership, nav teams, runs, charts, projects, runnable projects + their pipelines...
    with django_assert_max_num_queries(10):
        page = _dashboard(alice_client, runs[0])
    assert all(f'data-run="{run.pk}"' in page for run in runs)
    assert 'class="nav-runs"' in page and 'data-testid="team-switcher"' in page


@pytest.mark.django_db
def test_the_editor_reads_step_states_active_run_and_nav_in_a_fixed_number_of_queries(
    sleep_project, alice, alice_client, django_assert_max_num_queries
):
    run = start_run(sleep_project, alice)
    pipeline = sleep_project.pipelines.get()
    alice_client.get(pipeline.editor_url())
    with django_assert_max_num_queries(10):
        page = alice_client.get(pipeline.editor_url()).content.decode()
    assert f'data-active-run="{run.pk}"' in page and 'data-step-state="queued"' in page
    assert 'data-testid="run-button"' in page and 'class="nav-runs"' in page


@pytest.mark.django_db
def test_htmx_partials_read_no_nav(sleep_project, alice_client, django_assert_max_num_queries):
    pipeline = sleep_project.pipelines.get()
    url = reverse(
        "designer-yaml",
        kwargs={"team": sleep_project.team.slug, "project": sleep_project.slug, "pipeline": pipeline.name},
    )
    alice_client.get(url, HTTP_HX_REQUEST="true")
    # session, user, pipeline, membership, latest version: no teams for a nav, no step states
    with django_assert_max_num_queries(5):
        response = alice_client.get(url, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content and b"team-switcher" not in response.content
