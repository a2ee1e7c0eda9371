"""Live fan-out on the embedded default: the local layer, merged batches, ordered cross-loop publishing."""

from __future__ import annotations

import asyncio
import json
import threading

from channels.layers import get_channel_layer

from designer.runs import groups, publish
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
