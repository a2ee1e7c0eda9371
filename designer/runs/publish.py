"""Publishing to the channel layer from any thread or event loop, in order, best effort.

The in-memory layer (embedded default) is not thread-safe: its queues belong to the server's event loop,
where the consumers wait. So when the worker runs in its own thread, messages are handed to the server's
loop (remembered by the consumers when they connect). A Redis layer is safe from any loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]

_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop() -> None:
    """Called by consumers (on the server's loop): where the in-memory layer's receivers live."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


async def _send_all(layer: Any, messages: list[Message]) -> None:
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:  # the layer is best effort: clients re-sync from stored events
            log.exception("publishing %s to %s failed", message.get("type"), group)


async def publish(messages: list[Message]) -> None:
    """Send ``(group, message)`` pairs in order; never raises."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    target = _server_loop if isinstance(layer, InMemoryChannelLayer) else None
    running = asyncio.get_running_loop()
    if target is not None and target is not running and target.is_running():
        future = asyncio.run_coroutine_threadsafe(_send_all(layer, messages), target)
        await asyncio.wrap_future(future)
    else:
        await _send_all(layer, messages)


def publish_sync(messages: list[Message]) -> None:
    """``publish`` from sync code (views, the reaper)."""
    if messages:
        async_to_sync(publish)(messages)
