"""Bad requests get clean answers: unknown paths 404, unknown websocket routes a close code, never a 500."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from designer.routing import NOT_FOUND


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/static/..%2fdb.sqlite3", "/static/../manage.py", "/static/%2e%2e/.dev-secret-key", "/no/such/page/"],
)
def test_unknown_and_traversing_paths_are_not_found(path: str) -> None:
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code in (400, 404), (path, response.status_code)


@pytest.mark.parametrize("path", ["/ws/teams/demo/runs", "/ws/runs/1//", "/ws/nope/", "/"])
async def test_an_unknown_websocket_route_is_closed_with_4404(path: str) -> None:
    from designer.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": NOT_FOUND, "reason": ""} or (
        closed["type"] == "websocket.close" and closed["code"] == NOT_FOUND
    )
    await communicator.wait()


@pytest.mark.django_db
def test_a_team_name_over_its_limit_is_refused_with_a_message_and_not_stored() -> None:
    from designer.teams.models import Team
    from tests.factory import make_user

    client = Client()
    client.force_login(make_user("ann"))
    response = client.post("/teams/", {"name": "x" * 100_000})
    assert response.status_code == 200
    assert b"100,000 characters long; it may have at most 100." in response.content
    assert not Team.objects.exists()


@pytest.mark.django_db
def test_a_form_post_over_the_size_limit_gets_a_clean_400() -> None:
    from tests.factory import make_user

    client = Client(raise_request_exception=False)
    client.force_login(make_user("ann"))
    response = client.post("/teams/", {"name": "t", "description": "d" * (3 * 1024 * 1024)})
    assert response.status_code == 400
    assert b"<html" in response.content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "http:evil.example"])
def test_next_never_leaves_the_site(alice_client: Client, project: object, target: str) -> None:
    from tests.factory import make_pipeline

    pipeline = make_pipeline(project, "orders")  # type: ignore[arg-type]
    refused = alice_client.post("/p/acme/sales/-/run/", {"pipeline": "nope", "next": target})
    assert refused.status_code == 302 and refused["Location"] == "/p/acme/sales/"
    toggled = alice_client.post(
        f"/p/acme/sales/{pipeline.name}/template/", {"is_template": "1", "next": target}
    )
    assert toggled.status_code == 302 and toggled["Location"] == "/t/acme/library/"
    kept = alice_client.post("/p/acme/sales/-/run/", {"pipeline": "nope", "next": "/t/acme/runs/"})
    assert kept["Location"] == "/t/acme/runs/"


@pytest.mark.django_db
def test_a_project_description_over_its_limit_is_refused_and_the_inputs_say_their_limits(
    alice_client: Client, project: object
) -> None:
    from designer import limits
    from designer.editor.models import Project

    response = alice_client.post(
        "/p/acme/sales/-/settings/",
        {"concurrency": "3", "description": "d" * 2_000_000},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b"2,000,000 characters long; it may have at most 2,000. Nothing changed." in response.content
    stored = Project.objects.get(pk=project.pk)  # type: ignore[attr-defined]
    assert stored.description == "" and stored.concurrency != 3
    page = alice_client.get("/p/acme/sales/")
    assert f'maxlength="{limits.DESCRIPTION}"'.encode() in page.content
    fine = alice_client.post("/p/acme/sales/-/settings/", {"concurrency": "3", "description": "Sales, daily"})
    assert fine.status_code in (200, 302)
    assert Project.objects.get(pk=project.pk).description == "Sales, daily"  # type: ignore[attr-defined]
