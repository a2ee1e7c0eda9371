"""Websockets of live runs: one run's events (``/ws/runs/<id>/``) and a team's run list.

Both subscribe to their group through ``runs.fanout`` (one layer subscription per process, not per socket).
Replay without gap or duplicate: the consumer subscribes *before* reading stored history; messages delivered
meanwhile wait in ``pending`` and are forwarded after the replay, each event only when its seq is newer than
the last one sent. Events are stored before they are published, so every event is either in the history or
arrives live.

Without a channel layer (Redis down), a socket still opens: the client is told ``paused`` and gets the
stored events by polling the database every ``PAUSED_POLL`` seconds until the layer answers again; then
it catches up from the database, is told ``resumed`` and follows live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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
#: seconds between two looks at the database while the channel layer is down
PAUSED_POLL = 2.0

log = logging.getLogger(__name__)


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

    poller: asyncio.Task[None] | None = None

    async def disconnect(self, code: int) -> None:
        await self._stop_polling()
        if hasattr(self, "group"):
            await fanout.local().unsubscribe(self.group, self)

    async def _subscribe(self) -> bool:
        """Subscribe to ``group``; False when the channel layer does not answer (polling takes over)."""
        try:
            await fanout.local().subscribe(self.group, self)
        except Exception:
            log.warning("subscribing to %s failed: live updates paused", self.group, exc_info=True)
            return False
        return True

    async def paused(self) -> None:
        """The layer is down: tell the client, and poll until the layer answers again."""
        if self.poller is None:
            await self.send_json({"type": "paused"})
            self.poller = asyncio.get_running_loop().create_task(self._poll(subscribed=True))

    async def resumed(self) -> None:
        """The layer answers again: stop polling, catch up, tell the client."""
        await self._stop_polling()
        await self._catch_up()

    async def _poll(self, *, subscribed: bool) -> None:
        while True:
            await asyncio.sleep(PAUSED_POLL)
            await self._poll_once()
            if not subscribed and await self._subscribe():
                self.poller = None  # (this task ends here: nothing to cancel)
                await self._catch_up()
                return

    async def _stop_polling(self) -> None:
        poller, self.poller = self.poller, None
        if poller is not None and poller is not asyncio.current_task():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll_once(self) -> None:
        """What the client missed while the layer is down (nothing, for a run list)."""

    async def _catch_up(self) -> None:
        await self.send_json({"type": "resumed"})


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
        subscribed = await self._subscribe()
        try:
            await self.accept()
            await self._replay()
            if not subscribed:
                await self.send_json({"type": "paused"})
                self.poller = asyncio.get_running_loop().create_task(self._poll(subscribed=False))
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

    async def _poll_once(self) -> None:
        page = await self._stored_after(self.last_sent)
        if page:
            await self._send_events(page)

    async def _catch_up(self) -> None:
        """After an outage: what was stored meanwhile, then what arrived during the replay, then live."""
        self.live = False
        await self._replay()
        await self.send_json({"type": "resumed"})

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
        if not await self._subscribe():
            await self.send_json({"type": "paused"})
            self.poller = asyncio.get_running_loop().create_task(self._poll(subscribed=False))

    async def deliver(self, message: dict[str, Any]) -> None:
        """A run was queued or changed state (``groups.RUN_UPDATE``) in the team's topic."""
        await self.send_json({"type": "run", "run": message["run"], "html": message.get("html", "")})

    @database_sync_to_async
    def _authorised_team(self, user: Any, slug: str) -> int | None:
        team = Team.objects.filter(slug=slug).first()
        return team.pk if team is not None and can(user, team, "viewer") else None
