"""Running many pipelines: needs, concurrency, skipping, cancellation, subsets, the run result."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from orchestrator.control import RunControl
from orchestrator.events import (
    MemorySink,
    PipelineFinished,
    PipelineStarted,
    RunFinished,
    RunStarted,
    Status,
    StepFinished,
)
from orchestrator.scheduler import RunResult, UnknownPipelines, run_project, run_project_sync
from orchestrator.spec import ProjectSpec
from tests.orchestrator.engine_helpers import TRACKER, make_registry, pipeline, project, step


@pytest.fixture(autouse=True)
def fresh_tracker() -> None:
    TRACKER.__init__()  # type: ignore[misc]


async def run(spec: ProjectSpec, **options: Any) -> tuple[RunResult, MemorySink]:
    sink = MemorySink()
    result = await run_project(spec, sinks=[sink], registry=make_registry(), env={}, **options)
    return result, sink


def waiting(seconds: float, *, needs: list[str] | None = None, fail: str | None = None) -> dict[str, Any]:
    return pipeline([step("wait_extract", "read", seconds=seconds, fail=fail)], needs=needs)


def statuses(result: RunResult) -> dict[str, tuple[Status, str | None]]:
    return {name: (r.status, r.error) for name, r in result.pipelines.items()}


async def test_a_pipeline_runs_after_the_pipelines_it_needs() -> None:
    spec = project({"b": waiting(0.05, needs=["a"]), "a": waiting(0.05)}, concurrency=4)
    result, _ = await run(spec)
    assert result.status == Status.SUCCEEDED
    assert TRACKER.at("end a.read") < TRACKER.at("start b.read")


async def test_a_pipeline_starts_as_soon_as_its_needs_succeeded_not_in_waves() -> None:
    spec = project(
        {"fast": waiting(0.05), "slow": waiting(0.5), "after_fast": waiting(0.05, needs=["fast"])},
        concurrency=3,
    )
    result, _ = await run(spec)
    assert result.status == Status.SUCCEEDED
    assert TRACKER.at("start after_fast.read") < TRACKER.at("end slow.read") - 0.3


async def test_pipelines_run_concurrently_up_to_the_limit() -> None:
    spec = project({f"p{i}": waiting(0.1) for i in range(6)}, concurrency=2)
    started = time.perf_counter()
    result, _ = await run(spec)
    elapsed = time.perf_counter() - started
    assert result.status == Status.SUCCEEDED
    assert TRACKER.max_running == 2
    assert 0.3 <= elapsed < 1.0  # three rounds of 0.1 s


async def test_a_pipeline_whose_dependency_failed_is_skipped_transitively() -> None:
    spec = project(
        {
            "a": waiting(0, fail="no data"),
            "b": waiting(0, needs=["a"]),
            "c": waiting(0, needs=["b"]),
            "d": waiting(0),
        },
        concurrency=4,
    )
    result, sink = await run(spec)
    assert result.status == Status.FAILED
    assert result.error == "1 pipeline(s) failed: a"
    assert statuses(result) == {
        "a": (Status.FAILED, "pipeline 'a', phase extract, step 'read' (wait_extract): no data"),
        "b": (Status.SKIPPED, "skipped: it needs 'a', which failed"),
        "c": (Status.SKIPPED, "skipped: it needs 'b', which was skipped"),
        "d": (Status.SUCCEEDED, None),
    }
    assert [e.pipeline for e in sink.of(PipelineStarted)] == ["a", "d"]
    skipped = [(e.pipeline, e.status) for e in sink.of(PipelineFinished) if e.status == Status.SKIPPED]
    assert skipped == [("b", Status.SKIPPED), ("c", Status.SKIPPED)]


async def test_a_skip_reaches_dependents_listed_before_their_dependency() -> None:
    spec = project(
        {"late": waiting(0, needs=["mid"]), "mid": waiting(0, needs=["a"]), "a": waiting(0, fail="x")}
    )
    result, _ = await run(spec)
    assert statuses(result)["late"] == (Status.SKIPPED, "skipped: it needs 'mid', which was skipped")


async def test_cancelling_the_run_takes_effect_within_100_ms() -> None:
    control = RunControl()
    spec = project({"a": waiting(10), "b": waiting(10), "c": waiting(0, needs=["a"])}, concurrency=2)
    cancelled_at = 0.0

    def cancel_later() -> None:
        nonlocal cancelled_at
        time.sleep(0.2)
        cancelled_at = time.perf_counter()
        control.cancel()  # from another thread, like the web worker

    threading.Thread(target=cancel_later).start()
    result, sink = await run(spec, control=control)
    assert time.perf_counter() - cancelled_at < 0.1
    assert result.status == Status.CANCELLED
    assert statuses(result) == {
        "a": (Status.CANCELLED, "cancelled"),
        "b": (Status.CANCELLED, "cancelled"),
        "c": (Status.CANCELLED, "cancelled before it started"),
    }
    assert {(e.pipeline, e.status) for e in sink.of(StepFinished)} == {
        ("a", Status.CANCELLED),
        ("b", Status.CANCELLED),
    }
    assert sink.events[-1] == RunFinished(
        status=Status.CANCELLED, duration=result.duration, error="cancelled", ts=sink.events[-1].ts
    )


async def test_cancelling_during_a_blocking_transform_does_not_wait_for_it() -> None:
    control = RunControl()
    spec = project({"p": pipeline(transform=[step("tag_transform", "slow", tag="x", sleep=1.0)])})
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, control.cancel)
    started = time.perf_counter()
    result, sink = await run(spec, control=control)
    assert time.perf_counter() - started < 0.5  # the transform alone would take 1 s
    assert result.status == Status.CANCELLED
    assert [(e.step, e.status) for e in sink.of(StepFinished) if e.phase == "transform"] == [
        ("slow", Status.CANCELLED)
    ]


async def test_cancelling_one_pipeline_skips_its_dependents_and_spares_the_others() -> None:
    control = RunControl()
    spec = project({"a": waiting(10), "b": waiting(0.2), "c": waiting(0, needs=["a"])}, concurrency=3)
    asyncio.get_running_loop().call_later(0.05, control.cancel_pipeline, "a")
    started = time.perf_counter()
    result, _ = await run(spec, control=control)
    assert time.perf_counter() - started < 1.0  # 'a' alone would take 10 s
    assert statuses(result) == {
        "a": (Status.CANCELLED, "cancelled"),
        "b": (Status.SUCCEEDED, None),
        "c": (Status.SKIPPED, "skipped: it needs 'a', which was cancelled"),
    }
    assert result.status == Status.CANCELLED


async def test_a_cancel_before_the_run_starts_runs_nothing() -> None:
    control = RunControl()
    control.cancel()
    result, sink = await run(project({"a": waiting(0)}), control=control)
    assert statuses(result) == {"a": (Status.CANCELLED, "cancelled before it started")}
    assert not sink.of(PipelineStarted)


async def test_only_runs_a_subset_and_treats_needs_outside_it_as_satisfied() -> None:
    spec = project({"a": waiting(0, fail="x"), "b": waiting(0, needs=["a"]), "c": waiting(0, needs=["b"])})
    result, sink = await run(spec, only=["c", "b"])
    assert result.status == Status.SUCCEEDED
    assert list(result.pipelines) == ["b", "c"]
    assert sink.of(RunStarted)[0].pipelines == ["b", "c"]
    assert TRACKER.at("end b.read") < TRACKER.at("start c.read")


async def test_only_with_an_unknown_name_is_an_error() -> None:
    with pytest.raises(UnknownPipelines) as raised:
        await run(project({"a": waiting(0)}), only=["nope"])
    assert str(raised.value) == "no pipeline named 'nope' in this project (it has: a)"


async def test_the_run_result_has_every_pipeline_and_the_duration() -> None:
    result, sink = await run(project({"a": waiting(0.05), "b": waiting(0.05)}))
    assert result.status == Status.SUCCEEDED and result.ok and result.error is None
    assert set(result.pipelines) == {"a", "b"}
    assert all(0.05 <= r.duration < 0.5 for r in result.pipelines.values())
    assert 0.05 <= result.duration < 0.5
    assert isinstance(sink.events[0], RunStarted) and isinstance(sink.events[-1], RunFinished)


def test_the_sync_wrapper_runs_a_project() -> None:
    result = run_project_sync(project({"a": waiting(0)}), registry=make_registry(), env={})
    assert result.status == Status.SUCCEEDED


async def test_a_broken_sink_does_not_break_the_run() -> None:
    def broken(event: object) -> None:
        raise RuntimeError("sink down")

    result = await run_project(project({"a": waiting(0)}), sinks=[broken], registry=make_registry(), env={})
    assert result.status == Status.SUCCEEDED


async def test_cancelling_the_run_task_itself_reports_cancelled_then_propagates() -> None:
    sink = MemorySink()
    task = asyncio.create_task(
        run_project(project({"a": waiting(10)}), sinks=[sink], registry=make_registry(), env={})
    )
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(e.pipeline, e.status) for e in sink.of(PipelineFinished)] == [("a", Status.CANCELLED)]
    assert isinstance(sink.events[-1], RunFinished) and sink.events[-1].status == Status.CANCELLED
