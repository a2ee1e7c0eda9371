"""Events built the fast way and encoded the fast way are the same as the plain ones."""

from __future__ import annotations

import json

from orchestrator.events import RunStarted, Status, StepFinished, StepStarted


def test_a_fast_built_event_equals_the_dataclass_built_one() -> None:
    fields = {"pipeline": "p", "phase": "load", "step": "s", "plugin": "csv_load", "attempt": 2}
    fast = StepStarted.fast(**fields)
    assert fast == StepStarted(**fields, ts=fast.ts)
    assert hash(fast) == hash(StepStarted(**fields, ts=fast.ts))
    assert repr(fast).startswith("StepStarted(ts=")


def test_to_json_is_what_json_dumps_writes() -> None:
    event = StepFinished.fast(
        pipeline="p ✓",
        phase="transform",
        step='a "quoted" step',
        plugin="x",
        status=Status.FAILED,
        duration=1e-05,
        rows_in=3,
        rows_out=None,
        error="line\nbreak",
        attempt=1,
    )
    assert event.to_json() == json.dumps(event.to_dict(), default=str, separators=(",", ":"))
    assert json.loads(event.to_json())["status"] == "failed"


def test_to_dict_copies_lists() -> None:
    event = RunStarted(pipelines=["a"])
    event.to_dict()["pipelines"].append("b")
    assert event.pipelines == ["a"]
