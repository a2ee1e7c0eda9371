"""Websocket consumers: authorisation at connect, stored history then live events, no gap, no duplicate."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from designer.routing import websocket_urlpatterns
from designer.runs import consumers, groups, queue, records
from designer.runs.launch import start_run
from tests.factory import add_member, make_user
from tests.runs.conftest import session_headers

pytestmark = pytest.mark.django_db(transaction=True)

application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
def _fresh_layer(fresh_layer):  # type: ignore[no-untyped-def]
    """Every test here gets its own in-memory layer."""


def _event(n: int) -> dict:
    return {
        "kind": "step_log",
        "ts": time.time(),
        "pipeline": "orders",
        "phase": "extract",
        "step": "wait",
        "level": "INFO",
        "message": f"line {n}",
    }


def _store(claim: queue.Claim, first: int, count: int) -> list[dict]:
    events = [_event(first + i) for i in range(count)]
    records.store_events(claim, first, events)
    return [
        {"seq": first + i, "kind": e["kind"], "ts": e["ts"], "message": e["message"]}
        for i, e in enumerate(events)
    ]


async def _publish(run_id: int, messages: list[dict]) -> None:
    await get_channel_layer().group_send(
        groups.run_group(run_id), groups.run_events_message(run_id, messages)
    )


async def _receive_seqs(comm: WebsocketCommunicator) -> list[int]:
    seqs: list[int] = []
    while True:
        message = await comm.receive_json_from(timeout=2)
        if message["type"] == "synced":
            return seqs
        seqs += [e["seq"] for e in message["events"]]


@pytest.fixture
def claimed_run(sleep_project, alice):  # type: ignore[no-untyped-def]
    run = start_run(sleep_project, alice)
    return run, queue.claim_next_run("w1", lease=30)


async def test_late_client_gets_history_after_its_seq_then_live_without_duplicates(claimed_run, alice):
    run, claim = claimed_run
    await sync_to_async(_store)(claim, 1, 3)
    comm = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/?after=1", headers=await sync_to_async(session_headers)(alice)
    )
    connected, _ = await comm.connect()
    assert connected
    assert await _receive_seqs(comm) == [2, 3]
    live = await sync_to_async(_store)(claim, 4, 1)
    await _publish(run.pk, [{"seq": 3, "kind": "step_log", "ts": 0}, *live])  # 3 again: must be skipped
    message = await comm.receive_json_from(timeout=2)
    assert [e["seq"] for e in message["events"]] == [4]
    assert message["events"][0]["message"] == "line 4"
    await comm.disconnect()


async def test_events_published_while_history_is_replayed_are_neither_lost_nor_repeated(
    claimed_run, alice, monkeypatch
):
    run, claim = claimed_run
    await sync_to_async(_store)(claim, 1, 2)
    original = consumers.RunEventsConsumer.__dict__["_stored_after"]

    async def racing_replay(self, seq):  # type: ignore[no-untyped-def]
        # Between joining the group and reading history: event 3 is stored and published, 4 only published
        # after the read (as a worker does: store, then publish).
        live3 = await sync_to_async(_store)(claim, 3, 1)
        await _publish(run.pk, live3)
        stored = await original.__get__(self, type(self))(seq)
        live4 = await sync_to_async(_store)(claim, 4, 1)
        await _publish(run.pk, live4)
        await asyncio.sleep(0.05)  # the server's loop delivers 4 while this client is still replaying
        return stored

    monkeypatch.setattr(consumers.RunEventsConsumer, "_stored_after", racing_replay)
    comm = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/", headers=await sync_to_async(session_headers)(alice)
    )
    assert (await comm.connect())[0]
    seqs = await _receive_seqs(comm)
    monkeypatch.setattr(consumers.RunEventsConsumer, "_stored_after", original)
    while not await comm.receive_nothing(timeout=0.3):
        seqs += [e["seq"] for e in (await comm.receive_json_from())["events"]]
    assert seqs == [1, 2, 3, 4]
    await comm.disconnect()


async def test_anonymous_and_non_members_are_refused_with_4403(claimed_run, bob):
    run, _ = claimed_run
    anonymous = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/")
    assert await anonymous.connect() == (False, consumers.FORBIDDEN)
    outsider = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/", headers=await sync_to_async(session_headers)(bob)
    )
    assert await outsider.connect() == (False, consumers.FORBIDDEN)
    team_outsider = WebsocketCommunicator(
        application, "/ws/teams/acme/runs/", headers=await sync_to_async(session_headers)(bob)
    )
    assert await team_outsider.connect() == (False, consumers.FORBIDDEN)


async def test_a_viewer_may_watch_and_the_team_list_sees_new_runs(sleep_project, team):
    viewer = await sync_to_async(make_user)("vera")
    await sync_to_async(add_member)(team, viewer, "viewer")
    comm = WebsocketCommunicator(
        application, f"/ws/teams/{team.slug}/runs/", headers=await sync_to_async(session_headers)(viewer)
    )
    assert (await comm.connect())[0]
    run = await sync_to_async(start_run)(sleep_project, viewer)
    message = await comm.receive_json_from(timeout=2)
    assert message["type"] == "run" and message["run"]["id"] == run.pk and message["run"]["state"] == "queued"
    await comm.disconnect()


async def test_many_websockets_on_one_run_share_one_layer_subscription(claimed_run, alice):
    run, claim = claimed_run
    headers = await sync_to_async(session_headers)(alice)
    comms = [WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers) for _ in range(10)]
    for comm in comms:
        assert (await comm.connect())[0]
        assert await _receive_seqs(comm) == []
    layer = get_channel_layer()
    assert len(layer.groups[groups.run_group(run.pk)]) == 1
    assert len(layer.channels) == 1  # the topic's: no websocket waits on a layer channel of its own

    await _publish(run.pk, await sync_to_async(_store)(claim, 1, 2))
    for comm in comms:
        message = await comm.receive_json_from(timeout=2)
        assert [e["seq"] for e in message["events"]] == [1, 2]

    for comm in comms:
        await comm.disconnect()
    assert not layer.groups.get(groups.run_group(run.pk))


async def test_clients_joining_while_a_run_streams_each_see_every_event_once_in_order(claimed_run, alice):
    run, claim = claimed_run
    headers = await sync_to_async(session_headers)(alice)
    total, clients = 60, []

    async def join() -> None:
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        assert (await comm.connect())[0]
        clients.append(comm)

    joining = []
    for first in range(1, total + 1, 3):  # a worker storing then publishing batches of 3...
        await _publish(run.pk, await sync_to_async(_store)(claim, first, 3))
        if first % 9 == 1:  # ...while clients keep arriving, some in the middle of a replay
            joining.append(asyncio.ensure_future(join()))
        await asyncio.sleep(0)
    await asyncio.gather(*joining)

    for comm in clients:
        seqs: list[int] = []
        synced = False
        while len(seqs) < total or not synced:
            message = await comm.receive_json_from(timeout=2)
            synced = synced or message["type"] == "synced"
            seqs += [e["seq"] for e in message.get("events", [])]
        assert seqs == list(range(1, total + 1))
        assert await comm.receive_nothing(timeout=0.05)  # and nothing twice
        await comm.disconnect()
    assert len(clients) == 7


async def test_a_replay_that_fails_leaves_no_subscription_behind(claimed_run, alice, monkeypatch):
    run, _ = claimed_run

    async def broken_history(self, seq):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(consumers.RunEventsConsumer, "_stored_after", broken_history)
    comm = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/", headers=await sync_to_async(session_headers)(alice)
    )
    await comm.connect()
    with pytest.raises(RuntimeError, match="database unavailable"):
        await comm.wait()
    assert not get_channel_layer().groups.get(groups.run_group(run.pk))
