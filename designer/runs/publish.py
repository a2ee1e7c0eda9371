"""Publishing to the channel layer from any thread or event loop, in order, best effort.

The in-memory layer (embedded default) is not thread-safe: its queues belong to the server's event loop,
where the consumers wait. So when the worker runs in its own thread, messages are handed to the server's
loop (remembered by the consumers when they connect): appended to an outbox that one task on that loop
drains in order. The worker does not wait for the delivery (its events are already stored), so it can
store its next batch while the server's loop fans the last one out. A Redis layer is safe from any loop;
sync code still hands its messages to a long-lived loop of the process when there is one (the server's or
a worker's), as starting an event loop and a Redis connection per message costs more than the message.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]

_server_loop: asyncio.AbstractEventLoop | None = None
_worker_loop: asyncio.AbstractEventLoop | None = None


class _Outbox:
    """Messages handed to one loop, oldest first, and whether a task on that loop is draining them."""

    def __init__(self) -> None:
        self.pending: collections.deque[tuple[Any, list[Message]]] = collections.deque()
        self.lock = threading.Lock()
        self.draining = False
        self.task: asyncio.Task[None] | None = None  # a reference, so the running drain is never collected

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: start draining."""
        self.task = loop.create_task(_drain(self), name="pipedeck publish")


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = weakref.WeakKeyDictionary()
_outboxes_lock = threading.Lock()


def remember_server_loop() -> None:
    """Called by consumers (on the server's loop): where the in-memory layer's receivers live."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def remember_worker_loop() -> None:
    """Called by a worker (on its loop): where sync code of this process may hand messages for a layer
    that is not the in-memory one."""
    global _worker_loop
    _worker_loop = asyncio.get_running_loop()


async def _send_all(layer: Any, messages: list[Message]) -> None:
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:  # the layer is best effort: clients re-sync from stored events
            log.exception("publishing %s to %s failed", message.get("type"), group)


async def _drain(outbox: _Outbox) -> None:
    """On the server's loop: send what the outbox holds, in order, until it is empty."""
    while True:
        with outbox.lock:
            if not outbox.pending:
                outbox.draining = False
                return
            layer, messages = outbox.pending.popleft()
        await _send_all(layer, messages)


def _hand_over(target: asyncio.AbstractEventLoop, layer: Any, messages: list[Message]) -> bool:
    """Queue ``messages`` for the loop ``target``; False when that loop cannot take them."""
    with _outboxes_lock:
        outbox = _outboxes.setdefault(target, _Outbox())
    with outbox.lock:
        outbox.pending.append((layer, messages))
        if outbox.draining:
            return True
        outbox.draining = True
    try:
        target.call_soon_threadsafe(outbox.start, target)
    except RuntimeError:  # the loop closed meanwhile: nobody listens there any more
        with outbox.lock:
            outbox.pending.clear()
            outbox.draining = False
        return False
    return True


async def publish(messages: list[Message]) -> None:
    """Send ``(group, message)`` pairs in order; never raises.

    To the in-memory layer from another thread's loop, this returns once the messages are queued for
    the server's loop (delivered in the order they were queued), not once they are delivered.
    """
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    target = _server_loop if isinstance(layer, InMemoryChannelLayer) else None
    running = asyncio.get_running_loop()
    if (
        target is not None
        and target is not running
        and target.is_running()
        and _hand_over(target, layer, messages)
    ):
        return
    await _send_all(layer, messages)


def publish_sync(messages: list[Message]) -> None:
    """``publish`` from sync code (views, the reaper, a worker's database threads); never raises. Handed
    to a running loop of the process when there is one (delivered in order, not waited for)."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    target = _server_loop if isinstance(layer, InMemoryChannelLayer) else (_worker_loop or _server_loop)
    if target is not None and target.is_running() and _hand_over(target, layer, messages):
        return
    async_to_sync(publish)(messages)
