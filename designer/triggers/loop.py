"""What a worker does for triggers between runs: fire due schedules, advance backfills, decide alerts of
finished runs, and send the alerts that are due (in a task of its own, so a slow destination never holds
the worker's loop). ``runs.worker.Worker.run`` calls ``tick()`` on every turn of its loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from designer.triggers import alerts, backfills, clock, delivery, schedules

log = logging.getLogger(__name__)

DbCall = Callable[..., Awaitable[Any]]


def due_work(worker_id: str, first: bool = True) -> dict[str, int]:
    """One look (database thread): up to ``schedules.CHUNK`` schedules fired; on the ``first`` look of a
    turn also backfill runs started and alerts of finished runs queued."""
    now = clock.now()
    steps: dict[str, Callable[[], int]] = {
        "fired": lambda: len(schedules.tick(now, worker_id, schedules.CHUNK))
    }
    if first:
        steps["backfill_runs"] = backfills.advance_all
        steps["alerts"] = lambda: alerts.sweep(now)
    done = dict.fromkeys(steps, 0)
    for key, step in steps.items():
        try:
            done[key] = step()
        except Exception:  # one part failing must not stop the others
            log.exception("triggers: %s failed", key)
    return done


def _monotonic_due() -> float | None:
    """When the next schedule fires, on ``time.monotonic()``'s scale (database thread)."""
    due = schedules.next_due()
    if due is None:
        return None
    return time.monotonic() + (due - clock.now()).total_seconds()


class TriggerLoop:
    """The trigger side of one worker. ``tick()`` returns at once: at most every ``interval`` seconds it
    starts a turn in a task of its own (the worker goes on claiming runs meanwhile, even those the turn
    queues): schedules fired a chunk at a time until none is due, backfills, alerts decided, then sent.

    Between turns it remembers when the next schedule fires, so that the worker wakes for it then
    (``seconds_until_due``) and the turn starts at once, instead of up to ``interval`` later."""

    def __init__(self, worker_id: str, db: DbCall, interval: float | None = None) -> None:
        self.worker_id = worker_id
        self.db = db
        self.interval = settings.PIPEDECK_TRIGGERS_TICK if interval is None else interval
        self._last = float("-inf")
        self._turn: asyncio.Task[None] | None = None
        #: time.monotonic() when the next schedule fires, as of the last turn (None: unknown or none)
        self._next_due: float | None = None

    def seconds_until_due(self) -> float | None:
        """Seconds until the next schedule fires, when that is later than now (else None)."""
        if self._next_due is None:
            return None
        left = self._next_due - time.monotonic()
        return left if left > 0 else None

    async def tick(self) -> None:
        """Start a turn if none is under way and ``interval`` has passed since the last one started, or a
        schedule's fire time has come."""
        if self._turn is not None and not self._turn.done():
            return
        now = time.monotonic()
        fire_time = self._next_due is not None and now >= self._next_due
        if now - self._last < self.interval and not fire_time:
            return
        self._next_due = None
        self._last = time.monotonic()
        self._turn = asyncio.create_task(self._run_turn(), name=f"triggers of {self.worker_id}")

    async def _run_turn(self) -> None:
        first = True
        try:
            while True:
                done = await self.db(due_work, self.worker_id, first)
                first = False
                if done["fired"] < schedules.CHUNK:  # a full chunk: more may be due
                    break
            self._next_due = await self.db(_monotonic_due)
        except Exception:
            log.exception("triggers: the look at due work failed")
        await self._send_due()

    async def _send_due(self) -> None:
        try:
            for outgoing in await self.db(delivery.claim_due):
                ok, detail = await asyncio.to_thread(
                    delivery.attempt, outgoing
                )  # never on the database threads
                await self.db(delivery.record, outgoing.delivery_id, outgoing.attempt, ok, detail)
        except Exception:
            log.exception("triggers: sending alerts failed")
