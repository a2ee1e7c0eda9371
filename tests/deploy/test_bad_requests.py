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
