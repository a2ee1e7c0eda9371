"""``LocalChannelLayer`` relies on private parts of Channels' ``InMemoryChannelLayer`` and of
``asyncio.Queue``; these tests fail as soon as either changes them, before anything else breaks quietly."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque

from channels.layers import InMemoryChannelLayer

from designer.runs.layers import LocalChannelLayer


def test_channels_still_cleans_expired_entries_in_a_private_method_of_that_name() -> None:
    clean = getattr(InMemoryChannelLayer, "_clean_expired", None)
    assert callable(clean), "InMemoryChannelLayer._clean_expired is gone: update LocalChannelLayer"
    assert list(inspect.signature(clean).parameters) == ["self"]


async def test_channels_still_keeps_a_queue_of_expiry_message_pairs_per_channel() -> None:
    layer = InMemoryChannelLayer()
    await layer.send("one", {"type": "x"})
    queue = layer.channels["one"]
    assert isinstance(queue, asyncio.Queue)
    items = queue._queue  # type: ignore[attr-defined]
    assert isinstance(items, deque)
    expires, message = items[-1]
    assert isinstance(expires, float) and expires > time.time() and message == {"type": "x"}
    await layer.group_add("g", "one")
    assert isinstance(layer.groups["g"]["one"], float)  # channel -> expiry time


async def test_what_the_local_layer_puts_the_in_memory_layer_receives() -> None:
    layer = LocalChannelLayer()
    await layer.group_add("g", "one")
    await layer.group_send("g", {"type": "y", "n": 1})
    await layer.send("one", {"type": "y", "n": 2})
    received = [await asyncio.wait_for(layer.receive("one"), 5) for _ in range(2)]
    assert received == [{"type": "y", "n": 1}, {"type": "y", "n": 2}]
