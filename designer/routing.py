"""Websocket routes: live run events, a team's live run list and a pipeline's editors; any other path is
closed with 4404."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from designer.editor import consumers as editor_consumers
from designer.runs import consumers

#: the close code of a websocket to a path that does not exist (4000-4999: for applications)
NOT_FOUND = 4404


class NoSuchRoute(AsyncWebsocketConsumer):
    """A websocket to an unknown path: accepted only to be closed with ``NOT_FOUND`` (not a server error).
    Async: nothing to look up, so no thread and no database connection."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=NOT_FOUND)


# (django-stubs' path() takes views only, not the ASGI applications Channels routes: hence the ignores)
websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", consumers.RunEventsConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/teams/<slug:slug>/runs/", consumers.TeamRunsConsumer.as_asgi()),  # type: ignore[arg-type]
    path(
        "ws/pipelines/<slug:team>/<slug:project>/<str:pipeline>/",
        editor_consumers.PipelineEditorsConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
    re_path(r"", NoSuchRoute.as_asgi()),  # type: ignore[arg-type]
]
