"""Websockets of live runs: one run's events (``/ws/runs/<id>/``) and a team's run list.

Replay without gap or duplicate: the consumer joins the group *before* reading stored history; messages
published meanwhile wait in its channel (Channels dispatches one message at a time, so they are handled
only after ``connect`` returns) and are then sent only when their seq is newer than the last one sent.
Events are stored before they are published, so every event is either in the history or arrives live.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from designer.access import can
from designer.models import Run, RunEvent, Team
from designer.runs import groups
from designer.runs.publish import remember_server_loop

#: close code for "not allowed" (an application code, like HTTP 403)
FORBIDDEN = 4403
REPLAY_PAGE = 500


def _after(scope: dict[str, Any]) -> int:
    raw = parse_qs(scope.get("query_string", b"").decode()).get("after", ["0"])[0]
    return int(raw) if raw.isdigit() else 0


class RunEventsConsumer(AsyncJsonWebsocketConsumer):
    """Sends ``{"type": "events", "events": [{seq, kind, ts, ...}]}``: stored history, then live."""

    run_id: int
    group: str
    last_sent: int

    async def connect(self) -> None:
        remember_server_loop()
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        state = await self._authorised_state(self.scope.get("user"), self.run_id)
        if state is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = groups.run_group(self.run_id)
        self.last_sent = _after(self.scope)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        while True:
            page = await self._stored_after(self.last_sent)
            if page:
                await self._send_events(page)
            if len(page) < REPLAY_PAGE:
                break
        await self.send_json({"type": "synced", "last_seq": self.last_sent})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Live events skip Channels' per-message ``close_old_connections`` (a hop to the one sync thread)."""
        if message["type"] == groups.RUN_EVENT:
            await self.run_event(message)  # uses no database connection
        else:
            await super().dispatch(message)

    async def run_event(self, message: dict[str, Any]) -> None:
        """A batch of live events (``groups.run_events_message``)."""
        if message["first"] > self.last_sent:  # all new: send the pre-encoded text
            await self.send(text_data=message["text"])
            self.last_sent = message["last"]
        elif message["last"] > self.last_sent:  # partly replayed already: send the rest
            events = json.loads(message["text"])["events"]
            await self._send_events([e for e in events if e["seq"] > self.last_sent])

    async def _send_events(self, events: list[dict[str, Any]]) -> None:
        await self.send_json({"type": "events", "events": events})
        self.last_sent = max(self.last_sent, events[-1]["seq"])

    @database_sync_to_async
    def _authorised_state(self, user: Any, run_id: int) -> str | None:
        run = Run.objects.select_related("team").filter(pk=run_id).first()
        if run is None or not can(user, run.team, "viewer"):
            return None
        return run.state

    @database_sync_to_async
    def _stored_after(self, seq: int) -> list[dict[str, Any]]:
        rows = RunEvent.objects.filter(run_id=self.run_id, seq__gt=seq).order_by("seq")[:REPLAY_PAGE]
        return [row.as_message() for row in rows]


class TeamRunsConsumer(AsyncJsonWebsocketConsumer):
    """Sends ``{"type": "run", "run": {...}}`` whenever a run of the team is queued or changes state."""

    group: str

    async def connect(self) -> None:
        remember_server_loop()
        team_id = await self._authorised_team(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"]
        )
        if team_id is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = groups.team_runs_group(team_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_update(self, message: dict[str, Any]) -> None:
        """A run was queued or changed state (``groups.RUN_UPDATE``)."""
        await self.send_json({"type": "run", "run": message["run"]})

    @database_sync_to_async
    def _authorised_team(self, user: Any, slug: str) -> int | None:
        team = Team.objects.filter(slug=slug).first()
        return team.pk if team is not None and can(user, team, "viewer") else None
