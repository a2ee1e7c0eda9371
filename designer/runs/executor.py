"""Executes one claimed run: hands its request to a child process (``designer.runs.isolation``) and stores
every event the child sends (batched, numbered), publishing it to the run's and the team's groups.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import transaction

from designer.runs import groups, isolation, outputs, queue, records
from designer.runs.models import Run
from designer.runs.publish import Message, publish
from designer.teams.models import Team
from orchestrator import Redactor, RunControl, RunFinished, RunRequest, Status

log = logging.getLogger(__name__)

#: runs a sync function in the worker's database threads
DbCall = Callable[..., Awaitable[Any]]

#: most events stored in one transaction (a burst of log lines is split into several)
MAX_BATCH = 500
#: how long the first event of a batch waits for the rest of its burst (seconds)
COALESCE = 0.005
#: seconds between attempts to store a batch the database refused (locked, connection lost...)
STORE_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0)


class EventRecorder:
    """The run's event sink: quick on the engine's loop; a flusher task stores and publishes in batches.

    Batching is adaptive: an event waits only while the previous batch is being written, so a quiet run
    has per-event latency and a noisy one writes hundreds of events per transaction.
    """

    def __init__(
        self, claim: queue.Claim, team_id: int, last_seq: int, db: DbCall, on_stale: Callable[[], None]
    ):
        self.claim = claim
        self.team_id = team_id
        self.next_seq = last_seq + 1
        self.db = db
        self.on_stale = on_stale
        self.stale = False
        #: the run_finished event, once it came
        self.finished: dict[str, Any] | None = None
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def add(self, event: dict[str, Any]) -> None:
        """Take one event (``Event.to_dict()``) to store and publish."""
        if event.get("kind") == RunFinished.kind:
            self.finished = event
        if not self.stale:
            self._pending.append(event)
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._flush_loop(), name=f"events of run {self.claim.run_id}"
        )

    async def close(self) -> None:
        """Flush what is left and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing:
                # Events come in bursts (a step finishes, the next starts...): gather the burst.
                await asyncio.sleep(COALESCE)
            self._wake.clear()
            while self._pending and not self.stale:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._flush(batch)
            if self._closing:
                return

    async def _flush(self, batch: list[dict[str, Any]]) -> None:
        first = self.next_seq
        if not await self._store(first, batch):
            self.stale = True
            self._pending.clear()
            self.on_stale()
            return
        self.next_seq += len(batch)
        self.batches += 1
        messages = []
        for offset, event in enumerate(batch):
            kind, ts, payload = records.event_record(event)
            messages.append({"seq": first + offset, "kind": kind, "ts": ts, **payload})
        out: list[Message] = [
            (
                groups.run_group(self.claim.run_id),
                groups.run_events_message(self.claim.run_id, messages),
            )
        ]
        await publish(out)

    async def _store(self, first: int, batch: list[dict[str, Any]]) -> bool:
        """Store the batch, retrying while the database refuses it; False when the run must stop.

        A batch is never dropped: the events after it would leave a gap in the run's history and its
        steps' rows would keep their old state. A stale claim stops the run at once; a database that
        keeps failing for ~8 s stops it too (the reaper then re-queues it once its lease runs out).
        """
        for delay in (*STORE_RETRY_DELAYS, None):
            try:
                await self.db(records.store_events, self.claim, first, batch)
                return True
            except queue.StaleClaim:
                log.warning("run %s: attempt %s is stale, stopping it", self.claim.run_id, self.claim.attempt)
                return False
            except Exception:
                if delay is None:
                    log.exception(
                        "run %s: storing %d events failed, stopping it", self.claim.run_id, len(batch)
                    )
                    return False
                log.warning(
                    "run %s: storing %d events failed, retrying in %s s",
                    self.claim.run_id,
                    len(batch),
                    delay,
                    exc_info=True,
                )
                await asyncio.sleep(delay)
        return False


class OutputRecorder:
    """The run's step output summaries (``designer.runs.outputs``): stored in the worker's database threads
    as they come, in order, beside the events (never among them)."""

    def __init__(self, claim: queue.Claim, db: DbCall, redactor: Redactor) -> None:
        self.claim = claim
        self.db = db
        self.redactor = redactor
        self.pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, items: list[dict[str, Any]]) -> None:
        # the worker masks what the child sends, samples included, whatever the child did with them
        self.pending.extend(self.redactor.redact_value(item) for item in items)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await self.db(outputs.store, self.claim, batch)
            except Exception:  # a summary is for people: losing one never stops the run
                log.warning(
                    "run %s: storing %d step outputs failed", self.claim.run_id, len(batch), exc_info=True
                )

    async def close(self) -> None:
        if self._task is not None:
            await self._task


def _load(claim: queue.Claim) -> dict[str, Any]:
    run = Run.objects.select_related("team").get(pk=claim.run_id)
    if claim.attempt > 1:  # an earlier attempt reported: start again from scratch
        records.reset_units(run.pk)
        outputs.reset(run.pk)
    request = dataclasses.replace(isolation.build_request(run), **outputs.request_options(run))
    return {
        "request": request,
        "team": run.team,
        "last_seq": run.last_seq,
        "cancel_requested": run.cancel_requested,
        # the worker masks these in everything the child sends, whatever the child did with them
        "redactor": Redactor(request.secrets.values()),
    }


def _finish(claim: queue.Claim, state: str, error: str) -> list[Message] | None:
    with transaction.atomic():
        if not queue.finish_run(claim, state, error):
            return None
        records.close_units(claim.run_id, "" if state == Status.CANCELLED else error)
    return _update_messages(claim.run_id)


def _update_messages(run_id: int) -> list[Message]:
    """The team's dashboard message about the run's current state (none for a preview: not listed)."""
    run = Run.objects.select_related("project").get(pk=run_id)
    return [] if run.is_preview else [groups.run_update_message(run)]


async def run_update(db: DbCall, run_id: int) -> None:
    """Tell the team's dashboard about the run's current state."""
    await publish(await db(_update_messages, run_id))


async def execute(claim: queue.Claim, control: RunControl, db: DbCall) -> str | None:
    """Run ``claim``'s run to the end in a child process; its final state (None: the claim went stale)."""
    loaded = await db(_load, claim)
    team: Team = loaded["team"]
    request: RunRequest = loaded["request"]
    redactor: Redactor = loaded["redactor"]
    if loaded["cancel_requested"]:
        control.cancel()
    await run_update(db, claim.run_id)
    recorder = EventRecorder(claim, team.pk, loaded["last_seq"], db, control.cancel)
    recorder.start()
    kept = OutputRecorder(claim, db, redactor)

    def record(events: list[dict[str, Any]]) -> None:
        for event in events:
            recorder.add(redactor.redact_value(event))

    try:
        ended = await isolation.sandbox().run(request, record, control, kept.add)
    except asyncio.CancelledError:
        # The worker is shutting down (the child is killed): the caller re-queues or fails the run.
        await recorder.close()
        await kept.close()
        raise
    except Exception as exc:
        log.exception("run %s: its process could not run", claim.run_id)
        ended = None
        recorder.add(_finished(Status.FAILED, f"internal error: the run's process could not start: {exc!r}"))
    if recorder.finished is None and ended is not None:
        if ended.stderr.strip():
            log.warning(
                "run %s: its process ended early; its stderr:\n%s", claim.run_id, redactor(ended.stderr)
            )
        cancelled = control.cancelled and ended.stopped != "timeout"
        status = Status.CANCELLED if cancelled else Status.FAILED
        recorder.add(_finished(status, "cancelled" if cancelled else ended.failure(request.limits)))
    finished = recorder.finished or {}
    state = str(finished.get("status") or Status.FAILED)
    error = str(finished.get("error") or "")
    if control.cancelled and state != Status.FAILED:
        state = Status.CANCELLED
    await kept.close()  # stored before the run shows as finished: its page then shows every output
    await recorder.close()
    if recorder.stale:
        return None
    update = await db(_finish, claim, state, error)
    if update is None:
        return None
    await publish(update)
    return state


def _finished(status: Status, error: str) -> dict[str, Any]:
    """The run's last event, written by the worker when the child could not write it."""
    return RunFinished(status=status, duration=0.0, error=error).to_dict()
