"""One channel-layer subscription per group and server process, handed to every local websocket in turn.

Channels' usual shape is one layer channel per consumer, each joined to the group. A group message then
costs, per connected websocket, a receive task woken, ``await_many_dispatch``'s ``asyncio.wait`` and a new
receive task, about half of the server thread's time per socket with 100 sockets watching a run (and, on
Redis, one copy of the message per socket through Redis). Here a process subscribes once per group: a
``Topic`` owns one layer channel, joined to the group while at least one local websocket listens, and one
task that receives from it and awaits ``Subscriber.deliver`` of each local subscriber, in subscription
order. A message is delivered to the subscribers of the moment it is received; it is never re-sent.

When the layer fails (Redis down), the topic tells its subscribers (``paused``: they fall back to the
database), joins its group again until that works (Redis may have lost the membership), then tells them
(``resumed``: they catch up from the database, then follow live again).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

#: seconds before the topic receives again after the layer failed (Redis down, say)
RETRY_AFTER = 1.0


class Subscriber(Protocol):
    """What a topic hands its messages to (a websocket consumer)."""

    async def deliver(self, message: dict[str, Any]) -> None:
        """Forward one group message to the client, without waiting for it to read (Daphne buffers a
        websocket's writes): the topic delivers to its subscribers one after the other."""

    async def paused(self) -> None:
        """The layer failed: messages may be lost until ``resumed``."""

    async def resumed(self) -> None:
        """The layer works again (messages sent while it was down were lost)."""


class Topic:
    """A group's messages in this process: one layer channel, one receiving task, local subscribers."""

    def __init__(self, layer: Any, group: str) -> None:
        self.layer = layer
        self.group = group
        self.channel = ""
        # An ordered set that forgets a consumer Channels dropped without its disconnect() having run.
        self.subscribers: weakref.WeakKeyDictionary[Subscriber, None] = weakref.WeakKeyDictionary()
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.left = False

    async def join(self) -> None:
        """Take a layer channel, add it to the group and start receiving."""
        try:
            self.channel = await self.layer.new_channel()  # (channels-redis needs its own prefix)
            await self.layer.group_add(self.group, self.channel)
        except BaseException as exc:
            self.joined.set_exception(exc)
            self.joined.exception()  # retrieved: the first subscriber raises it
            raise
        if self.left:  # every subscriber went while joining
            await self.layer.group_discard(self.group, self.channel)
        else:
            self.task = asyncio.get_running_loop().create_task(self._pump(), name=f"fan-out {self.group}")
        self.joined.set_result(None)

    async def leave(self) -> None:
        """Stop receiving and leave the group (the last local subscriber went)."""
        self.left = True
        if self.task is not None:
            self.task.cancel()
        if self.channel and self.joined.done():
            try:
                await self.layer.group_discard(self.group, self.channel)
            except Exception:  # the membership expires by itself in the layer
                log.exception("leaving %s failed", self.group)

    async def _pump(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if await self._layer_answers():  # a hiccup (an idle read timing out), not an outage
                    continue
                log.warning("receiving %s failed: live updates paused", self.group, exc_info=True)
                await self._tell("paused")
                await self._rejoin()
                await self._tell("resumed")
                continue
            for subscriber in list(self.subscribers):
                try:
                    await subscriber.deliver(message)
                except Exception:
                    log.exception("delivering %s to %r failed", message.get("type"), subscriber)

    async def _layer_answers(self) -> bool:
        """True when the layer takes the group membership again (a restarted Redis has forgotten it)."""
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception:
            return False
        return True

    async def _rejoin(self) -> None:
        """Join the group again, as soon as the layer answers."""
        while True:
            await asyncio.sleep(RETRY_AFTER)
            if await self._layer_answers():
                log.warning("%s: the channel layer answers again, live updates resumed", self.group)
                return

    async def _tell(self, what: str) -> None:
        for subscriber in list(self.subscribers):
            try:
                await getattr(subscriber, what)()
            except Exception:
                log.exception("telling %r the layer %s failed", subscriber, what)


class Fanout:
    """The topics of one event loop and channel layer (``local()`` finds it)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.topics: dict[str, Topic] = {}

    async def subscribe(self, group: str, subscriber: Subscriber) -> None:
        """Deliver ``group``'s messages to ``subscriber``: every message sent after this returns."""
        topic = self.topics.get(group)
        if topic is None:
            topic = self.topics[group] = Topic(self.layer, group)
            topic.subscribers[subscriber] = None
            try:
                await topic.join()
            except BaseException:
                if self.topics.get(group) is topic:
                    del self.topics[group]
                raise
            return
        topic.subscribers[subscriber] = None
        await asyncio.shield(topic.joined)

    async def unsubscribe(self, group: str, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber``; the last one out leaves the group."""
        topic = self.topics.get(group)
        if topic is None or subscriber not in topic.subscribers:
            return
        del topic.subscribers[subscriber]
        if not topic.subscribers:
            del self.topics[group]
            await topic.leave()


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def local() -> Fanout:
    """This event loop's fan-out on the default channel layer (a new one when the layer was replaced,
    as tests do)."""
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _fanouts[loop] = Fanout(layer)
    return fanout
