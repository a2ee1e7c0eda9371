"""The run queue on SQLite: claim once, stale writes refused, the reaper (PostgreSQL: tests/integration)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from designer.runs import queue
from designer.runs.launch import start_run
from designer.runs.models import Run


def _expire(run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE designer_run SET lease_expires_at = '2000-01-01 00:00:00' WHERE id = %s", [run_id]
        )


def test_claim_takes_the_oldest_queued_run_and_sets_worker_lease_and_attempt(sleep_project, alice):
    first = start_run(sleep_project, alice)
    start_run(sleep_project, alice)
    claim = queue.claim_next_run("w1", lease=30)
    assert claim == queue.Claim(first.pk, 1, "w1")
    first.refresh_from_db()
    assert first.state == "running" and first.worker_id == "w1" and first.attempt == 1
    assert first.lease_expires_at is not None and first.started_at is not None


def test_claim_returns_none_when_nothing_is_queued(db):
    assert queue.claim_next_run("w1", lease=30) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_get_each_run_exactly_once(sleep_project, alice):
    runs = {start_run(sleep_project, alice).pk for _ in range(20)}
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (claim := queue.claim_next_run(f"w{n}", lease=30)) is not None:
            with lock:
                claimed.append(claim.run_id)
        connection.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(runs)


@pytest.mark.django_db(transaction=True)
def test_claimers_taking_several_at_once_get_each_run_exactly_once_oldest_first(sleep_project, alice):
    runs = [start_run(sleep_project, alice).pk for _ in range(23)]
    first = queue.claim_runs("w0", 30, 5)
    assert [c.run_id for c in first] == runs[:5] and {c.attempt for c in first} == {1}
    claimed: list[int] = [c.run_id for c in first]
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while claims := queue.claim_runs(f"w{n}", 30, 4):
            assert len(claims) <= 4
            with lock:
                claimed.extend(c.run_id for c in claims)
        connection.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == runs
    assert set(Run.objects.values_list("state", flat=True)) == {"running"}


def test_a_stale_attempt_writes_nothing(sleep_project, alice):
    run = start_run(sleep_project, alice)
    old = queue.claim_next_run("w1", lease=30)
    _expire(run.pk)
    assert queue.reap_lost_runs() == [queue.Reaped(run.pk, 1, True)]
    new = queue.claim_next_run("w2", lease=30)
    assert new is not None and new.attempt == 2
    assert queue.heartbeat(old, 30) is False
    assert queue.finish_run(old, "succeeded") is False
    assert queue.requeue_run(old) is False
    run.refresh_from_db()
    assert run.state == "running" and run.worker_id == "w2"
    assert queue.finish_run(new, "succeeded") is True


def test_a_heartbeat_after_the_runs_own_finish_is_told_from_a_run_taken_away(sleep_project, alice):
    finished = start_run(sleep_project, alice)
    claim = queue.claim_next_run("w1", lease=30)
    assert claim is not None and claim.run_id == finished.pk
    assert queue.finish_run(claim, "succeeded")
    assert queue.heartbeat(claim, 30) is False and queue.finished_by(claim) is True

    taken = start_run(sleep_project, alice)
    old = queue.claim_next_run("w1", lease=30)
    assert old is not None and old.run_id == taken.pk
    _expire(taken.pk)
    queue.reap_lost_runs()  # re-queued: another attempt will run it
    assert queue.heartbeat(old, 30) is False and queue.finished_by(old) is False
    new = queue.claim_next_run("w2", lease=30)
    assert new is not None and queue.finish_run(new, "succeeded")
    assert queue.finished_by(old) is False  # finished, but by another attempt


def test_reaper_requeues_a_run_that_never_heartbeated_then_fails_it_when_attempts_are_used(
    sleep_project, alice
):
    run = start_run(sleep_project, alice)
    assert run.max_attempts == 2
    queue.claim_next_run("w1", lease=30)
    assert queue.reap_lost_runs() == []  # lease still running
    _expire(run.pk)
    assert [r.requeued for r in queue.reap_lost_runs()] == [True]
    run.refresh_from_db()
    assert run.state == "queued" and run.worker_id == ""
    queue.claim_next_run("w2", lease=30)
    _expire(run.pk)
    assert [r.requeued for r in queue.reap_lost_runs()] == [False]
    run.refresh_from_db()
    assert (run.state, run.error) == ("failed", "worker lost")


def test_heartbeat_extends_the_lease_by_the_database_clock(sleep_project, alice):
    run = start_run(sleep_project, alice)
    claim = queue.claim_next_run("w1", lease=0.001)
    _expire(run.pk)
    assert queue.heartbeat(claim, lease=60)
    assert queue.reap_lost_runs() == []
    run.refresh_from_db()
    assert run.heartbeat_at is not None


def test_a_cancelled_run_is_not_requeued_by_the_reaper(sleep_project, alice):
    run = start_run(sleep_project, alice)
    queue.claim_next_run("w1", lease=30)
    assert queue.request_cancel(run.pk)
    _expire(run.pk)
    assert [r.requeued for r in queue.reap_lost_runs()] == [False]
    assert Run.objects.get(pk=run.pk).state == "failed"


def test_cancelling_a_queued_run_takes_it_off_the_queue(sleep_project, alice):
    run = start_run(sleep_project, alice)
    assert queue.cancel_queued(run.pk)
    assert queue.claim_next_run("w1", lease=30) is None
