"""Websocket routes: live run events and a team's live run list."""

from __future__ import annotations

from django.urls import path

from designer.runs import consumers

# (django-stubs' path() takes views only, not the ASGI applications Channels routes: hence the ignores)
websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", consumers.RunEventsConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/teams/<slug:slug>/runs/", consumers.TeamRunsConsumer.as_asgi()),  # type: ignore[arg-type]
]
