"""Live fan-out on the embedded default: the local layer, merged batches, ordered cross-loop publishing."""

from __future__ import annotations

import asyncio
import json
import threading

from channels.layers import get_channel_layer

from designer.runs import fanout, groups, publish
from designer.runs.layers import LocalChannelLayer


def _batch(run_id: int, first: int, count: int) -> dict:
    events = [
        {"seq": first + i, "kind": "step_log", "ts": 1.0, "message": f"line {first + i}"}
        for i in range(count)
    ]
    return groups.run_events_message(run_id, events)


def test_the_embedded_default_uses_the_local_layer() -> None:
    assert isinstance(get_channel_layer(), LocalChannelLayer)


def test_consecutive_batches_merge_into_one_message_with_every_event_in_order() -> None:
    merged = groups.merge_run_events(_batch(7, 1, 2), _batch(7, 3, 3))

    assert merged is not None
    assert (merged["first"], merged["last"]) == (1, 5)
    assert [e["seq"] for e in json.loads(merged["text"])["events"]] == [1, 2, 3, 4, 5]


def test_batches_with_a_gap_or_of_another_run_are_not_merged() -> None:
    assert groups.merge_run_events(_batch(7, 1, 2), _batch(7, 4, 1)) is None
    assert groups.merge_run_events(_batch(7, 1, 2), _batch(8, 3, 1)) is None
    assert groups.merge_run_events({"type": "run.update", "run": {}}, _batch(7, 3, 1)) is None


async def test_a_receiver_that_fell_behind_gets_the_waiting_batches_as_one_message() -> None:
    layer = LocalChannelLayer()
    late, idle = await layer.new_channel(), await layer.new_channel()
    for channel in (late, idle):
        await layer.group_add("pipedeck.run.7", channel)

    await layer.group_send("pipedeck.run.7", _batch(7, 1, 2))
    first = await layer.receive(idle)  # ``idle`` keeps up, ``late`` does not
    await layer.group_send("pipedeck.run.7", _batch(7, 3, 2))
    await layer.group_send("pipedeck.run.7", _batch(7, 5, 1))

    caught_up = await layer.receive(late)
    assert (caught_up["first"], caught_up["last"]) == (1, 5)
    assert [e["seq"] for e in json.loads(caught_up["text"])["events"]] == [1, 2, 3, 4, 5]
    assert (first["first"], first["last"]) == (1, 2)
    then = await layer.receive(idle)
    assert (then["first"], then["last"]) == (3, 5)


async def test_other_messages_are_delivered_one_by_one_and_each_receiver_gets_its_own_copy() -> None:
    layer = LocalChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    for channel in (a, b):
        await layer.group_add("pipedeck.team.1.runs", channel)
    for state in ("queued", "running"):
        await layer.group_send("pipedeck.team.1.runs", {"type": "run.update", "run": {"state": state}})

    got = [await layer.receive(a), await layer.receive(a)]
    got[0]["run"]["state"] = "changed"
    assert [m["run"]["state"] for m in got] == ["changed", "running"]
    assert (await layer.receive(b))["run"]["state"] == "queued"


async def test_publishing_from_another_threads_loop_delivers_every_batch_in_order(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    layer = LocalChannelLayer()
    monkeypatch.setattr(publish, "get_channel_layer", lambda: layer)
    channel = await layer.new_channel()
    await layer.group_add("pipedeck.run.7", channel)
    publish.remember_server_loop()

    def worker() -> None:  # the embedded worker's loop, in its own thread
        async def send_all() -> None:
            for first in range(1, 41):
                await publish.publish([("pipedeck.run.7", _batch(7, first, 1))])

        asyncio.run(send_all())

    thread = threading.Thread(target=worker)
    thread.start()
    seqs: list[int] = []
    while len(seqs) < 40:
        message = await asyncio.wait_for(layer.receive(channel), 5)
        seqs += [e["seq"] for e in json.loads(message["text"])["events"]]
    thread.join(5)
    assert seqs == list(range(1, 41))


class _Recorder:
    """A fan-out subscriber that keeps what it is handed."""

    def __init__(self, fail: bool = False) -> None:
        self.got: list[dict] = []
        self.fail = fail

    async def deliver(self, message: dict) -> None:
        if self.fail:
            raise ConnectionError("client went away")
        self.got.append(message)


async def _until(condition, timeout: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_process_joins_a_group_once_however_many_local_subscribers_listen() -> None:
    layer = LocalChannelLayer()
    hub = fanout.Fanout(layer)
    subscribers = [_Recorder() for _ in range(50)]
    await asyncio.gather(*(hub.subscribe("pipedeck.run.7", s) for s in subscribers))

    assert len(layer.groups["pipedeck.run.7"]) == 1  # one layer channel, not 50
    await layer.group_send("pipedeck.run.7", _batch(7, 1, 2))
    await layer.group_send("pipedeck.run.7", _batch(7, 3, 1))
    await _until(lambda: all(s.got for s in subscribers) and sum(len(s.got) for s in subscribers) >= 50)
    for subscriber in subscribers:  # one message or two (merged while the topic was busy), in order
        seqs = [e["seq"] for m in subscriber.got for e in json.loads(m["text"])["events"]]
        assert seqs[0] == 1
    await _until(lambda: all(s.got[-1]["last"] == 3 for s in subscribers))

    for subscriber in subscribers:
        await hub.unsubscribe("pipedeck.run.7", subscriber)
    assert not layer.groups.get("pipedeck.run.7")  # the last one out left the group
    assert hub.topics == {}


async def test_a_failing_subscriber_does_not_stop_the_others_and_unsubscribed_ones_get_nothing() -> None:
    layer = LocalChannelLayer()
    hub = fanout.Fanout(layer)
    broken, gone, kept = _Recorder(fail=True), _Recorder(), _Recorder()
    for subscriber in (broken, gone, kept):
        await hub.subscribe("pipedeck.team.1.runs", subscriber)
    await hub.unsubscribe("pipedeck.team.1.runs", gone)

    for state in ("queued", "running"):
        await layer.group_send("pipedeck.team.1.runs", {"type": "run.update", "run": {"state": state}})
    await _until(lambda: len(kept.got) == 2)

    assert [m["run"]["state"] for m in kept.got] == ["queued", "running"]
    assert gone.got == []


class _SlowLayer(LocalChannelLayer):
    """Joining a group takes a while (as a round trip to Redis does)."""

    async def group_add(self, group: str, channel: str) -> None:
        await asyncio.sleep(0.05)
        await super().group_add(group, channel)


async def test_leaving_while_the_first_subscription_is_still_joining_leaves_no_member_behind() -> None:
    layer = _SlowLayer()
    hub = fanout.Fanout(layer)
    subscriber = _Recorder()
    joining = asyncio.ensure_future(hub.subscribe("pipedeck.run.9", subscriber))
    await asyncio.sleep(0.01)  # the topic exists, its group_add has not finished
    assert not layer.groups.get("pipedeck.run.9")
    await hub.unsubscribe("pipedeck.run.9", subscriber)
    await joining

    assert not layer.groups.get("pipedeck.run.9")
    assert hub.topics == {}


async def test_a_second_subscriber_waits_until_the_group_is_joined() -> None:
    layer = _SlowLayer()
    hub = fanout.Fanout(layer)
    first, second = _Recorder(), _Recorder()
    joining = asyncio.ensure_future(hub.subscribe("pipedeck.run.9", first))
    await asyncio.sleep(0.01)
    await hub.subscribe("pipedeck.run.9", second)  # returns once messages sent from now on reach it

    await layer.group_send("pipedeck.run.9", _batch(9, 1, 1))
    await joining
    await _until(lambda: len(second.got) == 1 and len(first.got) == 1)


async def test_a_subscriber_dropped_without_unsubscribing_is_forgotten() -> None:
    import gc

    layer = LocalChannelLayer()
    hub = fanout.Fanout(layer)
    kept, dropped = _Recorder(), _Recorder()
    await hub.subscribe("pipedeck.run.5", kept)
    await hub.subscribe("pipedeck.run.5", dropped)
    del dropped  # a consumer whose instance Channels discarded before its disconnect() ran
    gc.collect()

    assert len(hub.topics["pipedeck.run.5"].subscribers) == 1
    await layer.group_send("pipedeck.run.5", _batch(5, 1, 1))
    await _until(lambda: len(kept.got) == 1)
