"""The editors of one pipeline, live: each hears the others' changes (with who and what) and who else is
there; a member of another team is refused."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from designer.editor import edits, pipelines as service
from designer.routing import websocket_urlpatterns
from tests.factory import add_member, make_pipeline, make_project, make_team, make_user

pytestmark = pytest.mark.django_db(transaction=True)

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
PATH = "/ws/pipelines/acme/sales/orders/"


@pytest.fixture(autouse=True)
def fresh_layer():  # type: ignore[no-untyped-def]
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def _headers(user: Any) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        (b"origin", b"http://testserver"),
    ]


def _setup() -> dict[str, Any]:
    alice, bob, eve = make_user("alice"), make_user("bob"), make_user("eve")
    team = make_team("Acme", members={alice: "owner", bob: "editor"})
    add_member(make_team("Rival"), eve, "owner")
    pipeline = make_pipeline(make_project(team, "Sales"), "orders")
    return {"alice": alice, "bob": bob, "eve": eve, "pipeline": pipeline}


async def _receive_until(comm: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = await comm.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message


async def test_editors_see_each_others_changes_and_presence() -> None:
    made = await sync_to_async(_setup)()
    a = WebsocketCommunicator(application, PATH, headers=await sync_to_async(_headers)(made["alice"]))
    b = WebsocketCommunicator(application, PATH, headers=await sync_to_async(_headers)(made["bob"]))
    assert (await a.connect())[0]
    assert await a.receive_json_from(timeout=5) == {"type": "hello", "revision": 0, "client": ""}
    assert (await b.connect())[0]
    assert (await _receive_until(b, "presence"))["users"] == ["alice"]
    assert (await _receive_until(a, "presence"))["users"] == ["bob"]

    def bob_removes_a_step() -> None:
        service.edit(
            made["pipeline"],
            lambda spec: edits.remove_step(spec, "load", "sink"),
            user=made["bob"],
            client="tab-b",
            label="Remove sink",
        )

    await sync_to_async(bob_removes_a_step)()
    changed = await _receive_until(a, "changed")
    assert changed == {
        "type": "changed",
        "revision": 1,
        "by": "bob",
        "client": "tab-b",
        "label": "Remove sink",
    }
    await b.disconnect()
    assert (await _receive_until(a, "presence"))["users"] == []
    await a.disconnect()


async def test_a_member_of_another_team_is_refused() -> None:
    made = await sync_to_async(_setup)()
    comm = WebsocketCommunicator(application, PATH, headers=await sync_to_async(_headers)(made["eve"]))
    connected, code = await comm.connect()
    assert not connected and code == 4403
