"""Faults with real processes on the scale-out mode (PostgreSQL + Redis + ``manage.py worker``):

- PostgreSQL connections cut mid-run (a TCP proxy between the site and PostgreSQL drops them): the workers
  reconnect by themselves, every run finishes (at most retried once) and nothing is recorded twice;
- a worker paused (SIGSTOP) for three leases, then resumed: its runs were taken over, its late writes
  change nothing (fencing) and it drops its stale runs within one heartbeat;
- SIGTERM to a worker: it stops at once, its runs are re-queued within its grace period and finish
  elsewhere.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.cluster import Cluster, running_cluster, wait_until
from tests.integration.tcpproxy import TcpProxy
from tests.processes import descendants

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: the workers' lease here: short, so that takeovers happen within the test
LEASE = 3.0


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5432))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def site(proxy: TcpProxy) -> Iterator[Cluster]:
    with running_cluster({"f1": LEASE, "f2": LEASE}, database_port=proxy.port, daphne=False) as c:
        yield c


def _running_on(site: Cluster, ids: list[int]) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for worker, run_id in site.sql(
        "SELECT worker_id, id FROM designer_run WHERE id = ANY(%s) AND state = 'running'", ids
    ):
        held.setdefault(worker, []).append(run_id)
    return held


def _all_succeeded(site: Cluster, ids: list[int]) -> None:
    wait_until(lambda: site.unfinished(ids) == 0, timeout=120, step=0.2)
    states = dict(site.sql("SELECT id, state FROM designer_run WHERE id = ANY(%s)", ids))
    assert set(states.values()) == {"succeeded"}, states
    assert site.gaps(ids) == []
    finished = site.sql(
        "SELECT run_id, count(*) FROM designer_runevent WHERE run_id = ANY(%s) AND kind = 'run_finished' "
        "GROUP BY 1",
        ids,
    )
    assert sorted(finished) == sorted((run_id, 1) for run_id in ids), "a run finished twice"


def test_database_connections_cut_mid_run(site: Cluster, proxy: TcpProxy) -> None:
    ids = site.enqueue("slow", 6)
    wait_until(lambda: _running_on(site, ids), timeout=30, step=0.05)
    assert proxy.cut() > 0
    _all_succeeded(site, ids)
    attempts = {a for (a,) in site.sql("SELECT attempt FROM designer_run WHERE id = ANY(%s)", ids)}
    assert attempts <= {1, 2}


def test_a_paused_worker_is_fenced_and_drops_its_runs(site: Cluster) -> None:
    ids = site.enqueue("slow", 4)
    victim, held = wait_until(
        lambda: next(((w, r) for w, r in _running_on(site, ids).items() if w in site.workers), None),
        timeout=30,
        step=0.05,
    )
    process = site.workers[victim]
    process.send_signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        # another worker takes its runs once their lease is over
        wait_until(
            lambda: (
                site.sql("SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND attempt >= 2", held)[0][0]
                == len(held)
            ),
            timeout=6 * LEASE,
            step=0.1,
        )
        wait_until(lambda: time.monotonic() - paused_at >= 3 * LEASE, timeout=4 * LEASE, step=0.1)
    finally:
        process.send_signal(signal.SIGCONT)
    resumed_at = time.monotonic()
    # its children (the runs it still believed it held) end within a heartbeat, plus the kill escalation
    wait_until(lambda: not _run_children(process.pid), timeout=LEASE / 3 + 10, step=0.05)
    assert time.monotonic() - resumed_at <= LEASE / 3 + 4
    _all_succeeded(site, ids)
    attempts = dict(site.sql("SELECT id, attempt FROM designer_run WHERE id = ANY(%s)", held))
    assert set(attempts.values()) == {2}


def _run_children(worker_pid: int) -> list[int]:
    """The worker's run processes: every descendant but its fork server."""
    processes = descendants(worker_pid)
    return processes[1:] if processes else []


def test_sigterm_stops_a_worker_and_its_runs_finish_elsewhere(site: Cluster) -> None:
    ids = site.enqueue("slow", 4)
    victim, held = wait_until(
        lambda: next(((w, r) for w, r in _running_on(site, ids).items() if w in site.workers), None),
        timeout=30,
        step=0.05,
    )
    process = site.workers.pop(victim)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=1 + 15)  # its grace (1 s) and the time to re-queue and close
    assert process.returncode == 0
    _all_succeeded(site, ids)
    site.start_worker(victim, LEASE)  # for the next test
