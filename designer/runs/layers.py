"""The embedded default's channel layer: Channels' in-memory layer without its per-message O(clients) costs.

It relies on two private parts, checked by tests/runs/test_layers.py: ``InMemoryChannelLayer._clean_expired``
and the queue of ``(expiry, message)`` pairs per channel (an ``asyncio.Queue``, whose ``_queue`` deque is
read to merge a batch into the last undelivered one).

``InMemoryChannelLayer`` scans every channel and every group membership for expired entries on each
``receive`` and ``group_send``, and starts one task per member on ``group_send``: with 100 websockets on a
run, each live batch cost 100 x 100 scans and 100 tasks on the server's loop. Here the scan runs at most
once per ``CLEAN_EVERY`` seconds (messages expire after ``expiry``, 60 s by default, so expiry is still
honoured within a second) and a group send puts the message on each member's queue directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from designer.runs import groups

#: seconds between two scans for expired messages and group memberships
CLEAN_EVERY = 1.0

_IMMUTABLE = (str, int, float, bool, bytes, type(None))


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    """What each receiver gets: its own copy (a flat message of immutable values needs no deep copy)."""
    if all(isinstance(value, _IMMUTABLE) for value in message.values()):
        return dict(message)
    return deepcopy(message)


class LocalChannelLayer(InMemoryChannelLayer):
    """``InMemoryChannelLayer``'s API and semantics, O(1) per receive and per delivered message.

    One addition: a message whose type has a merger (``MERGERS``) is folded into the undelivered message
    at the end of the receiver's queue when the merger accepts both. A run's fan-out (``runs.fanout``) that
    fell behind a burst then catches up with one message instead of many, so the server sends fewer
    websocket messages when it is busiest.
    """

    MERGERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]] = {
        groups.RUN_EVENT: groups.merge_run_events
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at >= CLEAN_EVERY:
            self._cleaned_at = now
            super()._clean_expired()  # type: ignore[misc]  # private method, not in types-channels

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        merge = self.MERGERS.get(message.get("type", ""))
        if merge is not None:
            # asyncio.Queue's private deque (InMemoryChannelLayer reads ``_queue`` too), not in typeshed
            waiting_items: deque[tuple[float, dict[str, Any]]] = queue._queue  # type: ignore[attr-defined]
            if waiting_items:
                expires, waiting = waiting_items[-1]
                merged = merge(waiting, message)
                if merged is not None:
                    waiting_items[-1] = (expires, merged)
                    return
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send a message onto a channel (raises ChannelFull when its queue is at capacity)."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send to every channel of the group; a full channel misses the message (as in Channels)."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)
