"""The background loop end to end on SQLite: runs execute once, events are stored gaplessly, rows follow."""

from __future__ import annotations

import time

import pytest

from designer.runs import launch
from designer.runs.launch import start_run
from designer.runs.models import Run, RunEvent, StepRun
from tests.factory import make_pipeline

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = {
    "type": "ETL",
    "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": 30}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
    },
}
FAILING = {
    "type": "ETL",
    "phases": {
        "extract": {
            "steps": [{"id": "gen", "plugin": "generate_rows", "args": {"rows": 5, "columns": {"id": "i"}}}]
        },
        "transform": {"steps": [{"id": "bad", "plugin": "filter_rows", "args": {"expr": "nope > 1"}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
    },
}


def wait_for(predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def finished(run_id: int) -> Run | None:
    run = Run.objects.get(pk=run_id)
    return run if run.finished else None


def test_a_queued_run_is_executed_and_every_event_stored_in_order(sleep_project, alice, worker_thread):
    run = start_run(sleep_project, alice)
    done = wait_for(lambda: finished(run.pk))
    assert done.state == "succeeded" and done.attempt == 1
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and done.last_seq == len(seqs)
    kinds = list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    steps = {s.step_id: s for s in StepRun.objects.filter(pipeline_run__run=run)}
    assert {s.state for s in steps.values()} == {"succeeded"}
    assert steps["wait"].rows_out == 1 and steps["wait"].duration is not None
    assert run.pipeline_runs.get().state == "succeeded"


def test_a_batch_the_database_refuses_is_stored_on_a_later_attempt_not_dropped(
    sleep_project, alice, worker_thread, monkeypatch
):
    from django.db import OperationalError

    from designer.runs import executor, records

    real_store, refusals = records.store_events, []

    def locked_at_first(claim, first_seq, events):  # type: ignore[no-untyped-def]
        if len(refusals) < 2:  # SQLite under a concurrent writer, a dropped connection...
            refusals.append(first_seq)
            raise OperationalError("database is locked")
        return real_store(claim, first_seq, events)

    monkeypatch.setattr(records, "store_events", locked_at_first)
    monkeypatch.setattr(executor, "STORE_RETRY_DELAYS", (0.01, 0.01, 0.01))
    run = start_run(sleep_project, alice)
    done = wait_for(lambda: finished(run.pk))

    assert refusals == [1, 1] and done.state == "succeeded"
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, done.last_seq + 1))
    assert RunEvent.objects.filter(run=run, kind="run_started").exists()
    assert {s.state for s in StepRun.objects.filter(pipeline_run__run=run)} == {"succeeded"}


def test_a_failing_step_fails_the_run_with_its_step_phase_and_cause(project, alice, worker_thread):
    make_pipeline(project, "broken", spec=FAILING)
    run = start_run(project, alice)
    done = wait_for(lambda: finished(run.pk))
    assert done.state == "failed"
    bad = StepRun.objects.get(pipeline_run__run=run, step_id="bad")
    assert bad.state == "failed" and "bad" in bad.error and "transform" in bad.error
    assert StepRun.objects.get(pipeline_run__run=run, step_id="sink").state in ("skipped", "cancelled")


def test_cancel_stops_a_long_run_promptly(project, alice, worker_thread):
    make_pipeline(project, "slow", spec=SLOW)
    run = start_run(project, alice)
    wait_for(lambda: StepRun.objects.filter(pipeline_run__run=run, step_id="wait", state="running").exists())
    started = time.monotonic()
    assert launch.cancel(Run.objects.get(pk=run.pk))
    done = wait_for(lambda: finished(run.pk))
    assert done.state == "cancelled"
    assert time.monotonic() - started < 2
    assert StepRun.objects.get(pipeline_run__run=run, step_id="wait").state == "cancelled"


def test_graceful_stop_requeues_what_the_worker_still_holds(project, alice):
    import asyncio
    import threading

    from designer.runs.worker import Worker

    make_pipeline(project, "slow", spec=SLOW)
    run = start_run(project, alice)
    worker = Worker(worker_id="w-stop", concurrency=1, lease=5, poll=0.05, grace=0.2)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    wait_for(lambda: Run.objects.filter(pk=run.pk, state="running").exists())
    worker.stop()
    thread.join(5)
    run.refresh_from_db()
    assert (run.state, run.worker_id, run.attempt) == ("queued", "", 1)


def test_a_worker_whose_run_was_taken_away_stops_it_and_writes_nothing(project, alice, worker_thread):
    from django.db import connection, transaction

    from designer.runs import queue

    make_pipeline(project, "slow", spec=SLOW)
    run = start_run(project, alice)
    wait_for(lambda: StepRun.objects.filter(pipeline_run__run=run, step_id="wait", state="running").exists())
    # The lease "expires": the reaper re-queues, another worker claims. In one transaction: the test's
    # worker polls the queue every 50 ms and would otherwise claim the re-queued run itself first.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE designer_run SET lease_expires_at = '2000-01-01' WHERE id = %s", [run.pk])
        assert [r.requeued for r in queue.reap_lost_runs()] == [True]
        other = queue.claim_next_run("other-worker", lease=60)
    assert other is not None and other.attempt == 2
    stored = RunEvent.objects.filter(run=run).count()
    wait_for(lambda: not worker_thread.held, timeout=10)  # its heartbeat was refused: it cancelled its run
    run.refresh_from_db()
    assert (run.state, run.worker_id, run.attempt) == ("running", "other-worker", 2)
    assert RunEvent.objects.filter(run=run).count() == stored  # nothing written by the stale attempt


def test_the_embedded_worker_never_starts_inside_the_test_process():
    from django.conf import settings

    from designer.runs.worker import start_embedded_worker

    assert settings.PIPEDECK_INPROCESS_WORKER is False
    assert start_embedded_worker() is None
