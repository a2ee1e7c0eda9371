"""Websockets of live runs: one run's events (``/ws/runs/<id>/``) and a team's run list.

Both subscribe to their group through ``runs.fanout`` (one layer subscription per process, not per socket).
Replay without gap or duplicate: the consumer subscribes *before* reading stored history; messages delivered
meanwhile wait in ``pending`` and are forwarded after the replay, each event only when its seq is newer than
the last one sent. Events are stored before they are published, so every event is either in the history or
arrives live.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from designer.runs import fanout, groups
from designer.runs.models import Run, RunEvent
from designer.runs.publish import remember_server_loop
from designer.teams.models import Team
from designer.web import can

#: close code for "not allowed" (an application code, like HTTP 403)
FORBIDDEN = 4403
REPLAY_PAGE = 500


def _after(scope: Mapping[str, Any]) -> int:
    raw = parse_qs(scope.get("query_string", b"").decode()).get("after", ["0"])[0]
    return int(raw) if raw.isdigit() else 0


class _GroupListener(AsyncJsonWebsocketConsumer):
    """A websocket fed by its process's ``runs.fanout`` topic of ``group``, once it has subscribed."""

    # No layer channel (and receive task) per websocket, which Channels makes for the default alias: the
    # topic has the one channel. (An alias that names no layer gives none; types-channels wants a str.)
    channel_layer_alias = None  # type: ignore[assignment]
    group: str

    async def deliver(self, message: dict[str, Any]) -> None:
        """One message of ``group`` (``fanout.Subscriber``)."""
        raise NotImplementedError

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await fanout.local().unsubscribe(self.group, self)


class RunEventsConsumer(_GroupListener):
    """Sends ``{"type": "events", "events": [{seq, kind, ts, ...}]}``: stored history, then live."""

    run_id: int
    last_sent: int
    live: bool
    pending: list[dict[str, Any]]

    async def connect(self) -> None:
        remember_server_loop()
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        state = await self._authorised_state(self.scope.get("user"), self.run_id)
        if state is None:
            await self.close(code=FORBIDDEN)
            return
        self.group = groups.run_group(self.run_id)
        self.last_sent = _after(self.scope)
        self.live, self.pending = False, []
        await fanout.local().subscribe(self.group, self)
        try:
            await self.accept()
            await self._replay()
        except BaseException:  # disconnect() is not called when connect() fails
            await fanout.local().unsubscribe(self.group, self)
            raise

    async def _replay(self) -> None:
        """Stored history after ``last_sent``, then what was delivered meanwhile; then live."""
        while True:
            page = await self._stored_after(self.last_sent)
            if page:
                await self._send_events(page)
            if len(page) < REPLAY_PAGE:
                break
        await self.send_json({"type": "synced", "last_seq": self.last_sent})
        while self.pending:  # delivered during the replay
            await self._forward(self.pending.pop(0))
        self.live = True  # (no await since the last check: nothing can slip in between)

    async def deliver(self, message: dict[str, Any]) -> None:
        """A batch of live events (``groups.run_events_message``) from the run's topic."""
        if self.live:
            await self._forward(message)
        else:
            self.pending.append(message)

    async def _forward(self, message: dict[str, Any]) -> None:
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


class TeamRunsConsumer(_GroupListener):
    """Sends ``{"type": "run", "run": {...}, "html": "<tr ...>"}`` whenever a run of the team is queued or
    changes state: its summary and its dashboard row, rendered by the server (``groups.run_update_message``).
    """

    async def connect(self) -> None:
        remember_server_loop()
        team_id = await self._authorised_team(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["slug"]
        )
        if team_id is None:
            await self.close(code=FORBIDDEN)
            return
        await self.accept()
        self.group = groups.team_runs_group(team_id)
        await fanout.local().subscribe(self.group, self)

    async def deliver(self, message: dict[str, Any]) -> None:
        """A run was queued or changed state (``groups.RUN_UPDATE``) in the team's topic."""
        await self.send_json({"type": "run", "run": message["run"], "html": message.get("html", "")})

    @database_sync_to_async
    def _authorised_team(self, user: Any, slug: str) -> int | None:
        team = Team.objects.filter(slug=slug).first()
        return team.pk if team is not None and can(user, team, "viewer") else None
