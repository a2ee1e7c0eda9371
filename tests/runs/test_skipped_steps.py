"""A pipeline's steps that never start after a failure are "skipped" as soon as the pipeline finishes,
not "queued" until the run ends (its other pipelines may still be running)."""

from __future__ import annotations

import time

import pytest

from designer.runs import queue, records
from designer.runs.launch import start_run
from designer.runs.models import StepRun

pytestmark = pytest.mark.django_db


def test_steps_after_a_failure_are_skipped_when_their_pipeline_finishes(sleep_project, alice):
    run = start_run(sleep_project, alice)
    claim = queue.claim_next_run("w", 30)
    assert claim is not None and claim.run_id == run.pk
    now = time.time()
    records.store_events(
        claim,
        1,
        [
            {"kind": "step_started", "ts": now, "pipeline": "orders", "phase": "extract", "step": "wait"},
            {
                "kind": "step_finished",
                "ts": now,
                "pipeline": "orders",
                "phase": "extract",
                "step": "wait",
                "status": "failed",
                "error": "boom",
            },
            {
                "kind": "pipeline_finished",
                "ts": now,
                "pipeline": "orders",
                "status": "failed",
                "error": "boom",
            },
        ],
    )
    states = dict(StepRun.objects.filter(pipeline_run__run=run).values_list("step_id", "state"))
    assert states == {"wait": "failed", "sink": "skipped"}
