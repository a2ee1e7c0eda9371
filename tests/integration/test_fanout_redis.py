"""The per-process fan-out on the scale-out layer (channels-redis on a real Redis)."""

from __future__ import annotations

import asyncio
import uuid

from channels_redis.core import RedisChannelLayer

from designer.runs import fanout, groups


class _Recorder:
    def __init__(self) -> None:
        self.got: list[dict] = []

    async def deliver(self, message: dict) -> None:
        self.got.append(message)


async def test_one_redis_subscription_per_process_reaches_every_local_websocket(redis_url: str) -> None:
    prefix = f"pipedeck-test-{uuid.uuid4().hex[:8]}"
    web = RedisChannelLayer(hosts=[redis_url], prefix=prefix)  # a Daphne process
    worker = RedisChannelLayer(hosts=[redis_url], prefix=prefix)  # a worker process
    group = groups.run_group(4242)
    hub = fanout.Fanout(web)
    subscribers = [_Recorder() for _ in range(20)]
    try:
        for subscriber in subscribers:
            await hub.subscribe(group, subscriber)
        members = await _group_size(web, group)
        assert members == 1

        for first in (1, 2, 3):
            await worker.group_send(
                group, groups.run_events_message(4242, [{"seq": first, "kind": "step_log", "ts": 0.0}])
            )
        async with asyncio.timeout(5):
            while not all(len(s.got) == 3 for s in subscribers):
                await asyncio.sleep(0.01)
        assert all([m["first"] for m in s.got] == [1, 2, 3] for s in subscribers)

        for subscriber in subscribers:
            await hub.unsubscribe(group, subscriber)
        assert await _group_size(web, group) == 0
    finally:
        await web.flush()
        await worker.close_pools()
        await web.close_pools()


async def _group_size(layer: RedisChannelLayer, group: str) -> int:
    async with layer.connection(layer.consistent_hash(group)) as connection:
        return int(await connection.zcard(layer._group_key(group)))
