"""The background loop: claims queued runs, executes them, heartbeats, reaps lost runs, stops gracefully.

One asyncio loop per worker (the embedded one runs in a daemon thread of the server process; ``manage.py
worker`` runs it in its main thread). Database work happens in a small thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, connections

from designer.runs import executor, groups, isolation, queue, records
from designer.runs.publish import publish, remember_worker_loop
from designer.runs.retention import OutputsCleaner
from designer.triggers.loop import TriggerLoop
from orchestrator import RunControl, Status

log = logging.getLogger(__name__)

#: seconds the embedded worker gives its runs to finish when the server stops (then they are re-queued)
EMBEDDED_GRACE = 3.0
#: how often held runs are checked for a cancel request (seconds)
CANCEL_POLL = 0.25
#: seconds between two lines of the worker's health in the log
HEALTH_LOG = 60.0
#: runs claimed in one database call when there is room: a burst (100 schedules at one minute) starts
#: together, while the other workers still get their share of it
CLAIM_AT_ONCE = 10

_local_workers: list[Worker] = []
_embedded_lock = threading.Lock()
_embedded: Worker | None = None


@dataclass
class Held:
    claim: queue.Claim
    control: RunControl
    task: asyncio.Task[str | None] | None = None
    stale: bool = False


@dataclass
class Stats:
    claimed: int = 0
    finished: dict[str, int] = field(default_factory=dict)


def default_worker_id() -> str:
    """host:pid:random, unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Executes up to ``concurrency`` runs at once. Thread-safe controls: wake(), stop(), cancel(run_id)."""

    def __init__(
        self,
        worker_id: str | None = None,
        concurrency: int | None = None,
        lease: float | None = None,
        poll: float | None = None,
        grace: float = 10.0,
    ) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency or settings.PIPEDECK_WORKER_CONCURRENCY
        self.lease = lease or settings.PIPEDECK_WORKER_LEASE
        self.poll = poll or settings.PIPEDECK_WORKER_POLL
        self.grace = grace
        self.held: dict[int, Held] = {}
        self.stats = Stats()
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._db_pool = ThreadPoolExecutor(
            max_workers=1 if connection.vendor == "sqlite" else min(8, self.concurrency + 2),
            thread_name_prefix=f"pipedeck-db-{self.worker_id[-6:]}",
        )
        self.triggers = TriggerLoop(self.worker_id, self.db)
        self.outputs = OutputsCleaner(self.db)

    # -- thread-safe controls -------------------------------------------------------------------
    def _call_soon(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    def wake(self) -> None:
        """Look for queued runs now."""

        def do() -> None:
            if self._wake is not None:
                self._wake.set()

        self._call_soon(do)

    def stop(self) -> None:
        """Stop claiming; finish held runs within the grace period, then re-queue the rest."""

        def do() -> None:
            if self._stopping is not None:
                self._stopping.set()

        self._call_soon(do)

    def cancel(self, run_id: int) -> None:
        """Cancel a held run at once (the database flag reaches other processes by polling)."""

        def do() -> None:
            held = self.held.get(run_id)
            if held is not None:
                held.control.cancel()

        self._call_soon(do)

    # -- database --------------------------------------------------------------------------------
    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker's database threads."""

        def call() -> Any:
            try:
                return fn(*args)
            except (OperationalError, InterfaceError):
                close_old_connections()  # a broken connection is replaced on the next call
                raise

        return await asyncio.get_running_loop().run_in_executor(self._db_pool, call)

    # -- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until stop() is called."""
        self._loop = asyncio.get_running_loop()
        self._wake, self._stopping = asyncio.Event(), asyncio.Event()
        remember_worker_loop()  # its database threads hand their messages to this loop
        _local_workers.append(self)
        await asyncio.to_thread(isolation.sandbox().start)  # runs fork from it: start importing now
        helpers = [asyncio.create_task(self._watch()), asyncio.create_task(self._listen())]
        self.ready.set()
        last_reap = 0.0
        try:
            while not self._stopping.is_set():
                if time.monotonic() - last_reap > self.lease / 2:
                    last_reap = time.monotonic()
                    await self._reap()
                await self._claim_what_fits()
                await self.triggers.tick()  # due schedules, backfills and alerts (designer/triggers/)
                if not self.held:
                    await self.outputs.tick()  # the retention rule of kept step outputs (runs/retention.py)
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(self._stopping.wait())
                timeout = min(self.poll, self.triggers.seconds_until_due() or self.poll)
                await asyncio.wait([waiter, stopper], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                self._wake.clear()
            await self._shutdown()
        finally:
            for task in helpers:
                task.cancel()
            _local_workers.remove(self)
            with contextlib.suppress(Exception):  # the database may be what stopped us
                await self.db(queue.forget_worker, self.worker_id)
            await self.db(connections.close_all)
            self._db_pool.shutdown(wait=False)

    async def _claim_what_fits(self) -> None:
        assert self._stopping is not None  # made by run(), the caller
        while len(self.held) < self.concurrency and not self._stopping.is_set():
            room = min(CLAIM_AT_ONCE, self.concurrency - len(self.held))
            try:
                claims = await self.db(queue.claim_runs, self.worker_id, self.lease, room)
            except Exception:
                log.exception("claiming a run failed")
                return
            for claim in claims:
                self.stats.claimed += 1
                held = Held(claim, RunControl())
                self.held[claim.run_id] = held
                held.task = asyncio.create_task(self._execute(held), name=f"run {claim.run_id}")
            if len(claims) < room:
                return

    async def _execute(self, held: Held) -> str | None:
        state: str | None = None
        try:
            state = await executor.execute(held.claim, held.control, self.db)
        except asyncio.CancelledError:
            await self._give_back(held)
        except Exception:
            log.exception("run %s: worker error", held.claim.run_id)
            await self.db(queue.finish_run, held.claim, Status.FAILED, "internal error in the worker")
        finally:
            self.held.pop(held.claim.run_id, None)
            if state:
                self.stats.finished[state] = self.stats.finished.get(state, 0) + 1
            if self._wake is not None:
                self._wake.set()
        return state

    async def _give_back(self, held: Held) -> None:
        if await self.db(queue.requeue_run, held.claim):
            log.warning("run %s re-queued: worker %s is stopping", held.claim.run_id, self.worker_id)
            await executor.run_update(self.db, held.claim.run_id)
            await self.wake_others()

    async def _reap(self) -> None:
        try:
            reaped = await self.db(queue.reap_lost_runs)
        except Exception:
            log.exception("reaping lost runs failed")
            return
        for item in reaped:
            if not item.requeued:
                await self._report_lost(item.run_id)
            await executor.run_update(self.db, item.run_id)
        if any(item.requeued for item in reaped):
            await self.wake_others()
            assert self._wake is not None  # made by run(), the caller
            self._wake.set()

    async def _report_lost(self, run_id: int) -> None:
        def write() -> dict[str, Any]:
            # the run is already failed: nobody else writes to it any more
            return records.finish_without_engine(run_id, Status.FAILED, queue.WORKER_LOST).as_message()

        message = await self.db(write)
        await publish([(groups.run_group(run_id), groups.run_events_message(run_id, [message]))])

    async def _watch(self) -> None:
        """Every lease/3: say the worker is alive and heartbeat its runs; every CANCEL_POLL seconds, pick up
        cancel requests; every HEALTH_LOG seconds, log the worker's health."""
        last_beat = last_log = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - last_beat >= self.lease / 3:
                    last_beat = now
                    await self.db(queue.beat, self.worker_id, self.lease)
                    await self._heartbeat_runs()
                if now - last_log >= HEALTH_LOG:
                    last_log = now
                    self._log_health()
                held = [h.claim.run_id for h in self.held.values()]
                if held:
                    for run_id in await self.db(queue.cancel_requested_ids, held):
                        if run_id in self.held:
                            self.held[run_id].control.cancel()
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(CANCEL_POLL)

    async def _heartbeat_runs(self) -> None:
        for h in list(self.held.values()):
            if not h.stale and not await self.db(queue.heartbeat, h.claim, self.lease):
                if await self.db(queue.finished_by, h.claim):
                    continue  # the run's own finish landed first: nothing was taken
                log.warning("run %s was taken from worker %s: stopping it", h.claim.run_id, self.worker_id)
                h.stale = True
                h.control.cancel()

    def _log_health(self) -> None:
        log.info(
            "worker %s alive: %d run(s) held, %d claimed, finished %s",
            self.worker_id,
            len(self.held),
            self.stats.claimed,
            dict(self.stats.finished) or "none",
            extra={"worker": self.worker_id, "held": len(self.held), "claimed": self.stats.claimed},
        )

    async def _listen(self) -> None:
        """With a shared (Redis) channel layer, wake up as soon as any process queues a run."""
        layer = get_channel_layer()
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            return
        assert self._wake is not None  # made by run() before it starts this task
        channel = await layer.new_channel()
        await layer.group_add(groups.WORKERS_GROUP, channel)
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("type") == groups.WORKER_WAKE:
                    self._wake.set()
                elif message.get("type") == groups.WORKER_CANCEL and message.get("run") in self.held:
                    self.held[message["run"]].control.cancel()
        except asyncio.CancelledError:
            await layer.group_discard(groups.WORKERS_GROUP, channel)
            raise

    async def wake_others(self) -> None:
        """Re-queued runs: wake the workers of other processes (a shared layer), they also poll."""
        if not isinstance(get_channel_layer(), InMemoryChannelLayer):
            await publish([(groups.WORKERS_GROUP, {"type": groups.WORKER_WAKE})])

    async def _shutdown(self) -> None:
        tasks = [h.task for h in self.held.values() if h.task is not None]
        if tasks:
            log.warning(
                "worker %s stopping: waiting up to %.0f s for %d run(s)",
                self.worker_id,
                self.grace,
                len(tasks),
            )
            _, pending = await asyncio.wait(tasks, timeout=self.grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)


def wake_workers() -> None:
    """A run was queued: wake this process's worker, and the others through a shared channel layer."""
    for worker in list(_local_workers):
        worker.wake()
    layer = get_channel_layer()
    if layer is not None and not isinstance(layer, InMemoryChannelLayer):
        from designer.runs.publish import publish_sync

        publish_sync([(groups.WORKERS_GROUP, {"type": groups.WORKER_WAKE})])


def cancel_locally(run_id: int) -> None:
    """Cancel a run now if a worker of this process (or, via the layer, another process) holds it."""
    for worker in list(_local_workers):
        worker.cancel(run_id)
    layer = get_channel_layer()
    if layer is not None and not isinstance(layer, InMemoryChannelLayer):
        from designer.runs.publish import publish_sync

        publish_sync([(groups.WORKERS_GROUP, {"type": groups.WORKER_CANCEL, "run": run_id})])


def _freeze_long_lived_heap() -> None:
    """Take what the server process has loaded for good out of the garbage collector's sight.

    A full collection walks every tracked object: Django, Channels, Twisted, the engine and its plugins.
    That stalled the whole process (every websocket of it) for 70-80 ms now and then, which was the p99
    of live events with 100 watchers. Frozen objects are never collected, so only the long-lived ones
    loaded at start are frozen: the plugins are loaded first so that they are among them.
    """
    from orchestrator import registry

    registry.all()
    gc.collect()
    gc.freeze()


def _share_the_interpreter() -> None:
    """Hand the GIL over every 1 ms instead of 5 ms in the server process that embeds the worker.

    Daphne's loop thread is busiest exactly when a batch of events goes out to many websockets; the
    worker's database thread releases the GIL on every SQLite call and then waited up to a whole switch
    interval to get it back each time, so storing the next batch took 10-25 ms instead of 3.
    """
    sys.setswitchinterval(0.001)


def start_embedded_worker() -> Worker | None:
    """Start the in-process worker once (a daemon thread with its own loop), if settings enable it."""
    global _embedded
    if not settings.PIPEDECK_INPROCESS_WORKER:
        return None
    with _embedded_lock:
        if _embedded is None:
            worker = Worker(grace=EMBEDDED_GRACE)
            thread = threading.Thread(
                target=lambda: asyncio.run(worker.run()), name="pipedeck-worker", daemon=True
            )
            thread.start()
            worker.ready.wait(5)
            _embedded = worker
            _freeze_long_lived_heap()
            _share_the_interpreter()

            def stop_with_server() -> None:
                # Server shutdown (SIGTERM/SIGINT stop Daphne, then atexit runs): finish or re-queue.
                worker.stop()
                thread.join(EMBEDDED_GRACE + 5)

            atexit.register(stop_with_server)
        return _embedded


class StartsEmbeddedWorker:
    """ASGI wrapper that starts the in-process worker (embedded default) with the server.

    Under Daphne the worker starts as soon as the reactor runs, so runs queued before a restart resume
    without waiting for a page view; under any other ASGI server, on the first request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = False
        if "daphne.server" in sys.modules and settings.PIPEDECK_INPROCESS_WORKER:
            from twisted.internet import reactor

            reactor.callWhenRunning(self._start_in_background)

    def _start_in_background(self) -> None:
        self.started = True
        threading.Thread(target=start_embedded_worker, name="pipedeck-worker-start", daemon=True).start()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if not self.started:
            self.started = True
            await asyncio.to_thread(start_embedded_worker)  # does nothing unless settings ask for it
        return await self.app(scope, receive, send)
