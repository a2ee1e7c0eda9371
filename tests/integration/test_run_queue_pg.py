"""The run queue on PostgreSQL: SKIP LOCKED claims, stale attempts, the reaper on the database clock.

Run on a SQLite session (the default), ``test_queue_cases_pass_on_postgresql`` re-runs this file in a
child pytest with DATABASE_URL pointing at 127.0.0.1:5432, where the ``test_pg_*`` cases execute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection, connections

from designer.runs import queue
from designer.runs.launch import start_run
from designer.runs.models import Run
from tests.factory import make_pipeline, make_project, make_team, make_user

pytestmark = pytest.mark.integration

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ON_PG = connection.vendor == "postgresql"
ROOT = Path(__file__).resolve().parents[2]
on_pg_only = pytest.mark.skipif(not ON_PG, reason="runs in the PostgreSQL child session")


def postgres_reachable() -> bool:
    """True when a PostgreSQL server answers on 127.0.0.1:5432 (user postgres)."""
    try:
        import psycopg

        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.mark.skipif(ON_PG, reason="already on PostgreSQL: the cases run directly")
def test_queue_cases_pass_on_postgresql() -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres)")
    env = {**os.environ, "DATABASE_URL": PG_URL, "PIPEDECK_TEST_DB": "test_pipedeck_run_queue"}
    env.pop("PIPEDECK_SQLITE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--create-db",
            __file__,
            "-k",
            "test_pg_",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "6 passed" in result.stdout


@pytest.fixture
def pg_project(db):  # type: ignore[no-untyped-def]
    team = make_team("Acme")
    project = make_project(team, "Sales")
    make_pipeline(project, "orders")
    return project, make_user("alice")


def _expire(run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE designer_run SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [run_id]
        )


def _one(worker: str) -> list[queue.Claim]:
    claim = queue.claim_next_run(worker, lease=30)
    return [claim] if claim is not None else []


def _seven(worker: str) -> list[queue.Claim]:
    return queue.claim_runs(worker, 30, 7)


@on_pg_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("take", [_one, _seven], ids=["one at a time", "seven at a time"])
def test_pg_concurrent_claimers_get_each_run_exactly_once(pg_project, take) -> None:  # type: ignore[no-untyped-def]
    project, user = pg_project
    runs = {start_run(project, user).pk for _ in range(60)}
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def claimer(n: int) -> None:
        barrier.wait()
        try:
            while claims := take(f"w{n}"):
                with lock:
                    claimed.extend(c.run_id for c in claims)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(runs)
    assert set(Run.objects.values_list("attempt", flat=True)) == {1}


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_a_locked_queued_run_is_skipped_not_waited_for(pg_project) -> None:  # type: ignore[no-untyped-def]
    project, user = pg_project
    first, second = start_run(project, user), start_run(project, user)
    locked = threading.Event()
    release = threading.Event()

    def hold_first_row() -> None:
        from django.db import transaction

        with transaction.atomic():
            Run.objects.select_for_update().get(pk=first.pk)
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold_first_row)
    holder.start()
    assert locked.wait(10)
    claim = queue.claim_next_run("w1", lease=30)
    release.set()
    holder.join()
    assert claim is not None and claim.run_id == second.pk


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_a_stale_attempt_writes_nothing(pg_project) -> None:  # type: ignore[no-untyped-def]
    project, user = pg_project
    run = start_run(project, user)
    old = queue.claim_next_run("w1", lease=30)
    _expire(run.pk)
    assert [r.requeued for r in queue.reap_lost_runs()] == [True]
    new = queue.claim_next_run("w2", lease=30)
    assert new is not None and new.attempt == 2
    from designer.runs import records

    with pytest.raises(queue.StaleClaim):
        records.store_events(old, 1, [{"kind": "run_started", "ts": 1.0, "pipelines": ["orders"]}])
    assert queue.heartbeat(old, 30) is False and queue.finish_run(old, "succeeded") is False
    assert not run.events.exists()
    assert queue.finish_run(new, "succeeded")


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_reaper_requeues_a_run_that_never_heartbeated_then_fails_it(pg_project) -> None:  # type: ignore[no-untyped-def]
    project, user = pg_project
    run = start_run(project, user)
    queue.claim_next_run("w1", lease=0.2)
    assert queue.reap_lost_runs() == []
    import time

    time.sleep(0.3)  # the lease passes by the database clock
    assert [r.requeued for r in queue.reap_lost_runs()] == [True]
    queue.claim_next_run("w2", lease=30)
    _expire(run.pk)
    assert [r.requeued for r in queue.reap_lost_runs()] == [False]
    run.refresh_from_db()
    assert (run.state, run.error) == ("failed", "worker lost")


@on_pg_only
@pytest.mark.django_db(transaction=True)
def test_pg_heartbeat_keeps_a_run_from_the_reaper(pg_project) -> None:  # type: ignore[no-untyped-def]
    project, user = pg_project
    run = start_run(project, user)
    claim = queue.claim_next_run("w1", lease=0.2)
    assert queue.heartbeat(claim, lease=30)
    import time

    time.sleep(0.3)
    assert queue.reap_lost_runs() == []
    assert Run.objects.get(pk=run.pk).state == "running"
