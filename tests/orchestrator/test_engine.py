"""The execution rules of one pipeline: concurrency, order, failures, timeouts, retries, logs, events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import polars as pl
import pytest

from orchestrator.events import (
    MemorySink,
    PhaseFinished,
    PipelineFinished,
    Status,
    StepFinished,
    StepLog,
    StepProgress,
    StepStarted,
)
from orchestrator.scheduler import RunResult, run_project
from orchestrator.spec import ProjectSpec
from tests.orchestrator.engine_helpers import TRACKER, make_registry, pipeline, project, step


@pytest.fixture(autouse=True)
def fresh_tracker() -> None:
    TRACKER.__init__()  # type: ignore[misc]


async def run(spec: ProjectSpec, **options: Any) -> tuple[RunResult, MemorySink]:
    sink = MemorySink()
    result = await run_project(spec, sinks=[sink], registry=make_registry(), env={}, **options)
    return result, sink


def finished(sink: MemorySink, step_id: str) -> list[StepFinished]:
    return [e for e in sink.of(StepFinished) if e.step == step_id]


async def test_extract_steps_run_concurrently() -> None:
    steps = [step("wait_extract", f"e{i}", seconds=0.1) for i in range(20)]
    started = time.perf_counter()
    result, sink = await run(project({"p": pipeline(steps)}))
    elapsed = time.perf_counter() - started
    assert result.status == Status.SUCCEEDED
    assert elapsed < 0.5
    assert TRACKER.max_running == 20
    assert TRACKER.loads["p.write"].height == 20  # the merge concatenated all 20 one-row tables


async def test_load_steps_run_concurrently() -> None:
    loads = [step("wait_load", f"l{i}", seconds=0.1) for i in range(20)]
    started = time.perf_counter()
    result, _ = await run(project({"p": pipeline(load=loads)}))
    assert result.status == Status.SUCCEEDED
    assert time.perf_counter() - started < 0.5
    assert TRACKER.max_running == 20


async def test_transform_steps_run_in_order_each_on_the_previous_output() -> None:
    tags = ["a", "b", "c", "d"]
    spec = project({"p": pipeline(transform=[step("tag_transform", f"t_{t}", tag=t) for t in tags])})
    result, sink = await run(spec)
    assert result.status == Status.SUCCEEDED
    assert TRACKER.loads["p.write"].columns == ["n", *tags]
    started = [e.step for e in sink.of(StepStarted) if e.phase == "transform"]
    assert started == ["t_a", "t_b", "t_c", "t_d"]
    threads = {m.split(" in ")[1] for m in TRACKER.names() if m.startswith("transform")}
    assert threads == {"pipedeck p transform"}  # one worker thread, never the loop's


async def test_the_loop_stays_responsive_during_a_blocking_transform() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    spec = project({"p": pipeline(transform=[step("tag_transform", "slow", tag="x", sleep=0.4)])})
    result, _ = await run(spec)
    ticking.cancel()
    assert result.status == Status.SUCCEEDED
    assert ticks >= 15  # ~40 expected; a blocked loop would give ~0


async def test_pre_and_post_steps_run_around_their_phase() -> None:
    spec = project(
        {
            "p": pipeline(
                [step("wait_extract", "read", rows=3)],
                at_load=[step("mark_at_load", "sql")],
                extract_extra={"pre": [step("mark_pre", "prepare")], "post": [step("mark_post", "check")]},
                load_extra={"pre": [step("mark_pre", "truncate")], "post": [step("mark_post", "vacuum")]},
            )
        }
    )
    result, _ = await run(spec)
    assert result.status == Status.SUCCEEDED
    marks = [m for m in TRACKER.names() if not m.startswith(("start", "end"))]
    assert marks == [
        "pre extract prepare",
        "post extract check rows=3",
        "pre load truncate",
        "post load vacuum rows=3",
        "at_load sql",
    ]
    assert TRACKER.at("end p.read") < TRACKER.at("post extract check rows=3") < TRACKER.at("start p.write")


async def test_events_of_a_run_come_in_order() -> None:
    spec = project({"p": pipeline(transform=[step("tag_transform", "t", tag="x")])})
    _, sink = await run(spec)
    kinds = [(e.kind, getattr(e, "phase", ""), getattr(e, "step", "")) for e in sink.events]
    kinds = [k for k in kinds if k[0] != "step_log"]
    assert kinds == [
        ("run_started", "", ""),
        ("pipeline_started", "", ""),
        ("phase_started", "extract", ""),
        ("step_started", "extract", "read"),
        ("step_finished", "extract", "read"),
        ("phase_finished", "extract", ""),
        ("phase_started", "transform", ""),
        ("step_started", "transform", "t"),
        ("step_finished", "transform", "t"),
        ("phase_finished", "transform", ""),
        ("phase_started", "load", ""),
        ("step_started", "load", "write"),
        ("step_finished", "load", "write"),
        ("phase_finished", "load", ""),
        ("pipeline_finished", "", ""),
        ("run_finished", "", ""),
    ]


async def test_rows_in_and_out_are_reported_none_for_lazy_frames() -> None:
    spec = project(
        {
            "eager": pipeline(
                [step("wait_extract", "read", rows=5)],
                transform=[step("tag_transform", "top2", tag="x", keep_first=2)],
            ),
            "lazy": pipeline([step("lazy_extract", "read")]),
        }
    )
    _, sink = await run(spec)
    rows = {(e.pipeline, e.step): (e.rows_in, e.rows_out) for e in sink.of(StepFinished)}
    assert rows == {
        ("eager", "read"): (None, 5),
        ("eager", "top2"): (5, 2),
        ("eager", "write"): (2, None),
        ("lazy", "read"): (None, None),
        ("lazy", "write"): (None, None),
    }


async def test_a_failing_step_fails_its_phase_and_pipeline_and_cancels_its_siblings() -> None:
    steps = [
        step("wait_extract", "slow", seconds=5),
        step("wait_extract", "bad", seconds=0.05, fail="file 'x.csv' not found in data root /data"),
    ]
    started = time.perf_counter()
    result, sink = await run(project({"orders": pipeline(steps)}))
    assert time.perf_counter() - started < 1
    cause = "file 'x.csv' not found in data root /data"
    message = f"pipeline 'orders', phase extract, step 'bad' (wait_extract): {cause}"
    assert result.status == Status.FAILED
    assert result.pipelines["orders"].error == message
    assert [(e.status, e.error) for e in finished(sink, "bad")] == [(Status.FAILED, message)]
    assert [e.status for e in finished(sink, "slow")] == [Status.CANCELLED]
    assert [(e.phase, e.status, e.error) for e in sink.of(PhaseFinished)] == [
        ("extract", Status.FAILED, message)
    ]
    assert not finished(sink, "write")  # the load phase never ran
    assert sink.of(PipelineFinished)[0].status == Status.FAILED


async def test_an_unexpected_exception_names_its_type_and_its_traceback_is_logged() -> None:
    result, sink = await run(project({"p": pipeline([step("broken_extract", "read", message="boom")])}))
    assert (
        result.pipelines["p"].error
        == "pipeline 'p', phase extract, step 'read' (broken_extract): ValueError: boom"
    )
    errors = [e for e in sink.of(StepLog) if e.level == "ERROR"]
    assert len(errors) == 1 and "Traceback" in errors[0].message and "ValueError: boom" in errors[0].message


@pytest.mark.parametrize(
    ("bad_step", "cause"),
    [
        (step("nope", "read"), "unknown plugin 'nope'"),
        (
            step("wait_load", "read"),
            "plugin 'wait_load' is a load plugin; this place needs an extract plugin",
        ),
        (
            step("wait_extract", "read", seconds="soon"),
            "invalid args: seconds: Input should be a valid number, unable to parse string as a number",
        ),
        (step("wait_extract", "read", colour="red"), "invalid args: colour: Extra inputs are not permitted"),
        (step("not_a_frame_extract", "read"), "returned int; expected a polars DataFrame or LazyFrame"),
        (
            step("wait_extract", "read", seconds="${{ variables.MISSING }}"),
            "could not resolve args: variable 'MISSING' is not defined",
        ),
    ],
)
async def test_a_step_that_cannot_run_fails_with_a_message_saying_why(
    bad_step: dict[str, Any], cause: str
) -> None:
    result, _ = await run(project({"p": pipeline([bad_step])}))
    plugin = bad_step["plugin"]
    assert result.pipelines["p"].error == f"pipeline 'p', phase extract, step 'read' ({plugin}): {cause}"


async def test_args_are_resolved_at_run_time_from_variables_env_and_secrets() -> None:
    text = "${{ variables.COUNT }} rows for ${{ env.WHO }}"
    spec = project(
        {"p": pipeline(transform=[step("echo_transform", "echo", text=text)])}, variables={"COUNT": 3}
    )
    result = await run_project(spec, registry=make_registry(), env={"WHO": "ops"})
    assert result.pipelines["p"].error.endswith("(echo_transform): resolved to '3 rows for ops'")  # type: ignore[union-attr]

    whole = project({"p": pipeline(transform=[step("echo_transform", "echo", text="${{ variables.N }}")])})
    result = await run_project(whole, registry=make_registry(), variables={"N": 7}, env={})
    assert result.pipelines["p"].error.endswith("resolved to 7")  # type: ignore[union-attr]


async def test_secret_values_are_redacted_from_errors_and_logs() -> None:
    spec = project(
        {"p": pipeline(transform=[step("echo_transform", "echo", text="dsn=${{ secrets.DB }}")])},
        secrets={"DB": {"plugin": "env_secret", "args": {"name": "DB_URL"}}},
    )
    result = await run_project(spec, registry=make_registry(), env={"DB_URL": "pg://u:hunter2@db"})
    assert result.pipelines["p"].error == (
        "pipeline 'p', phase transform, step 'echo' (echo_transform): resolved to 'dsn=***'"
    )


async def test_a_step_reads_secrets_through_its_context_and_logs_them_redacted() -> None:
    spec = project(
        {"p": pipeline(transform=[step("secret_peek_transform", "peek", secret="DB")])},
        secrets={"DB": {"plugin": "env_secret", "args": {"name": "DB_URL"}}, "API": {}},
    )
    sink = MemorySink()
    env = {"DB_URL": "pg://u:hunter2@db"}
    result = await run_project(spec, sinks=[sink], registry=make_registry(), env=env)
    assert result.status == Status.SUCCEEDED
    assert [e.message for e in sink.of(StepLog)] == ["declared ['API', 'DB']; DB is ***"]


async def test_an_async_step_times_out() -> None:
    spec = project({"p": pipeline([step("wait_extract", "read", seconds=5, _timeout=0.1)])})
    started = time.perf_counter()
    result, sink = await run(spec)
    assert time.perf_counter() - started < 1
    assert (
        result.pipelines["p"].error
        == "pipeline 'p', phase extract, step 'read' (wait_extract): timed out after 0.1 s"
    )
    assert [e.status for e in finished(sink, "read")] == [Status.FAILED]


async def test_a_sync_step_times_out_without_waiting_for_its_thread() -> None:
    spec = project(
        {"p": pipeline(transform=[step("tag_transform", "slow", tag="x", sleep=1.5, _timeout=0.1)])}
    )
    started = time.perf_counter()
    result, sink = await run(spec)
    assert time.perf_counter() - started < 0.8
    assert (
        result.pipelines["p"].error
        == "pipeline 'p', phase transform, step 'slow' (tag_transform): timed out after 0.1 s"
    )
    assert [e.status for e in finished(sink, "slow")] == [Status.FAILED]


async def test_a_failing_async_step_is_retried_with_doubling_backoff() -> None:
    spec = project(
        {"p": pipeline([step("wait_extract", "read", fail_times=2, _retries=2, _retry_backoff=0.05)])}
    )
    result, sink = await run(spec)
    assert result.status == Status.SUCCEEDED
    starts = [e for e in sink.of(StepStarted) if e.step == "read"]
    assert [e.attempt for e in starts] == [1, 2, 3]
    assert [(e.attempt, e.status) for e in finished(sink, "read")] == [
        (1, Status.FAILED),
        (2, Status.FAILED),
        (3, Status.SUCCEEDED),
    ]
    gaps = [b.ts - a.ts for a, b in zip(starts, starts[1:], strict=False)]
    assert 0.05 <= gaps[0] < 0.1 and 0.1 <= gaps[1] < 0.25  # 0.05 s, then doubled
    retry_logs = [e.message for e in sink.of(StepLog) if e.level == "WARNING"]
    assert retry_logs == ["attempt 1 failed; retrying in 0.05 s", "attempt 2 failed; retrying in 0.1 s"]


async def test_retries_give_up_after_the_last_attempt() -> None:
    spec = project(
        {"p": pipeline([step("wait_extract", "read", fail_times=5, _retries=1, _retry_backoff=0)])}
    )
    result, sink = await run(spec)
    assert result.status == Status.FAILED
    assert result.pipelines["p"].error == (
        "pipeline 'p', phase extract, step 'read' (wait_extract): attempt failed on purpose (p.read)"
    )
    assert [(e.attempt, e.status) for e in finished(sink, "read")] == [(1, Status.FAILED), (2, Status.FAILED)]


async def test_a_failing_sync_step_is_retried() -> None:
    spec = project(
        {
            "p": pipeline(
                transform=[step("tag_transform", "t", tag="x", fail_times=1, _retries=1, _retry_backoff=0.01)]
            )
        }
    )
    result, sink = await run(spec)
    assert result.status == Status.SUCCEEDED
    assert [(e.attempt, e.status) for e in finished(sink, "t")] == [(1, Status.FAILED), (2, Status.SUCCEEDED)]


async def test_bad_args_are_not_retried() -> None:
    spec = project({"p": pipeline([step("wait_extract", "read", seconds="soon", _retries=3)])})
    _, sink = await run(spec)
    assert [e.attempt for e in finished(sink, "read")] == [1]


async def test_each_steps_log_lines_and_progress_become_its_events() -> None:
    spec = project(
        {"p": pipeline([step("chatty_extract", "read")], transform=[step("tag_transform", "t", tag="x")])}
    )
    _, sink = await run(spec)
    logs = [(e.step, e.phase, e.level, e.message) for e in sink.of(StepLog)]
    assert logs == [
        ("read", "extract", "INFO", "reading 3 rows"),
        ("read", "extract", "WARNING", "done"),
        ("t", "transform", "INFO", "tagging x"),  # from the worker thread
    ]
    progress = [(e.step, e.rows, e.total) for e in sink.of(StepProgress)]
    assert progress == [("read", 2, 3), ("read", 3, 3)]


async def test_merge_gets_every_extract_output_in_step_order() -> None:
    steps = [step("wait_extract", "b", rows=2, seconds=0.05), step("wait_extract", "a", rows=3)]
    result, sink = await run(project({"p": pipeline(steps)}))
    assert result.status == Status.SUCCEEDED
    assert "merge b,a" in TRACKER.names()
    merge = finished(sink, "merge")[0]
    assert (merge.phase, merge.rows_in, merge.rows_out) == ("extract", 5, 5)
    assert isinstance(TRACKER.loads["p.write"], pl.DataFrame)
