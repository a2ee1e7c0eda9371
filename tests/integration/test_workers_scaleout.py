"""Scale-out on PostgreSQL + Redis: three ``manage.py worker`` processes and a separate Daphne.

- 300 queued runs are each executed exactly once;
- ``kill -9`` of a worker mid-run: its runs are recovered (re-queued, then finished elsewhere) within
  twice the lease;
- a websocket client of a Daphne process that runs no worker sees live events of those runs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.cluster import ENQUEUE, Cluster, running_cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


async def _watch(cluster: Cluster, ids_ready: asyncio.Future[list[int]]) -> tuple[list[dict], list[dict]]:
    import websockets

    headers = {"Cookie": f"sessionid={cluster.session}", "Origin": f"http://127.0.0.1:{cluster.port}"}  # type: ignore[attr-defined]
    base = f"ws://127.0.0.1:{cluster.port}"
    async with websockets.connect(f"{base}/ws/teams/acme/runs/", additional_headers=headers) as team_ws:
        run_id = (await ids_ready)[0]
        events: list[dict] = []
        async with websockets.connect(f"{base}/ws/runs/{run_id}/", additional_headers=headers) as run_ws:
            while not any(e["kind"] == "run_finished" for e in events):
                message = json.loads(await asyncio.wait_for(run_ws.recv(), 20))
                if message["type"] == "events":
                    events += message["events"]
        updates: list[dict] = []
        while not any(u["id"] == run_id and u["state"] == "succeeded" for u in updates):
            message = json.loads(await asyncio.wait_for(team_ws.recv(), 20))
            assert message["type"] == "run", message  # (a "paused" would mean Redis failed here)
            updates.append(message["run"])
    return events, updates


def test_a_second_daphne_streams_events_of_runs_executed_by_workers(cluster: Cluster) -> None:
    async def scenario() -> tuple[list[dict], list[dict]]:
        ready: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        watcher = asyncio.create_task(_watch(cluster, ready))
        await asyncio.sleep(0.5)  # the team socket is connected before the run is queued
        ready.set_result(await asyncio.to_thread(cluster.shell, ENQUEUE, "watched", "1"))
        return await watcher

    events, updates = asyncio.run(scenario())
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and "step_started" in kinds and kinds[-1] == "run_finished"
    assert events[-1]["status"] == "succeeded"
    assert [u["state"] for u in updates][-1] == "succeeded"
    assert "queued" in [u["state"] for u in updates]


def test_three_workers_execute_300_runs_exactly_once(cluster: Cluster) -> None:
    ids = cluster.enqueue("quick", 300)
    assert len(ids) == 300
    wait_until(lambda: cluster.unfinished(ids) == 0, timeout=240, step=0.5)
    rows = cluster.sql(
        "SELECT state, attempt, count(*) FROM designer_run WHERE id = ANY(%s) GROUP BY 1, 2", ids
    )
    assert rows == [("succeeded", 1, 300)]
    starts = cluster.sql(
        "SELECT run_id, count(*) FROM designer_runevent "
        "WHERE run_id = ANY(%s) AND kind = 'run_started' GROUP BY 1",
        ids,
    )
    assert len(starts) == 300 and {n for _, n in starts} == {1}
    assert cluster.gaps(ids) == []


SHORT_LEASE = 2.0


def test_runs_of_a_killed_worker_are_recovered_within_twice_the_lease(cluster: Cluster) -> None:
    """Workers with a short lease of their own (the others are stopped meanwhile): ``kill -9`` one."""
    for name in ("w1", "w2", "w3"):
        cluster.stop_worker(name)
    for name in ("s1", "s2"):
        cluster.start_worker(name, lease=SHORT_LEASE)
    try:
        _recovered_within_twice_the_lease(cluster)
    finally:
        for name in ("s1", "s2"):
            if name in cluster.workers:
                cluster.stop_worker(name)
        for name in ("w1", "w2", "w3"):
            cluster.start_worker(name)


def _recovered_within_twice_the_lease(cluster: Cluster) -> None:
    ids = cluster.enqueue("slow", 12)

    def victim_holding() -> tuple[str, list[int]] | None:
        rows = cluster.sql(
            "SELECT worker_id, id FROM designer_run WHERE id = ANY(%s) AND state = 'running'", ids
        )
        held: dict[str, list[int]] = {}
        for worker, run_id in rows:
            held.setdefault(worker, []).append(run_id)
        return next(((w, r) for w, r in held.items() if w in cluster.workers), None)

    victim, held = wait_until(victim_holding, timeout=30)
    cluster.workers.pop(victim).send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    def recovered() -> bool:
        rows = cluster.sql(
            "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state = 'running' AND worker_id = %s",
            held,
            victim,
        )
        return rows[0][0] == 0

    wait_until(recovered, timeout=4 * SHORT_LEASE, step=0.05)
    assert time.monotonic() - killed_at <= 2 * SHORT_LEASE
    wait_until(
        lambda: (
            cluster.sql("SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state <> 'succeeded'", ids)[
                0
            ][0]
            == 0
        ),
        timeout=60,
        step=0.5,
    )
    attempts = dict(cluster.sql("SELECT id, attempt FROM designer_run WHERE id = ANY(%s)", held))
    assert set(attempts.values()) == {2}
    assert cluster.gaps(ids) == []
