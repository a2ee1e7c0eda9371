"""Sync steps with nothing listening (no sink: the CLI's ``--quiet``, W1's fast path): the same rules as
with a sink: order, a fresh plugin and context per step, retries, failures named, timeouts, cancel."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import polars as pl
import pytest

from orchestrator.events import Status
from orchestrator.plugins import Frame, PluginError, PluginRegistry, StepContext, TransformPlugin
from orchestrator.scheduler import run_project
from tests.orchestrator.engine_helpers import TRACKER, make_registry, pipeline, project, step

SEEN: list[tuple[int, str, str, str, int]] = []


class CountTransform(TransformPlugin):
    """No args: adds one to ``n`` and notes its instance, its context and the thread it ran in."""

    name = "count_transform"

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        SEEN.append((id(self), ctx.pipeline, ctx.phase, ctx.step_id, id(ctx)))
        assert ctx.plugin == "count_transform" and threading.current_thread().name == "pipedeck p transform"
        ctx.logger.info("counted")  # nobody listens: must cost nothing and fail nothing
        return data.with_columns(pl.col("n") + 1)


class NoneTransform(TransformPlugin):
    """No args, and returns no table: the step must fail saying so."""

    name = "none_transform"

    def transform(self, ctx: StepContext, data: Frame) -> Any:
        return None


class FlakyTransform(TransformPlugin):
    """No args: fails its first attempt of each run, then adds one to ``n``."""

    name = "flaky_transform"

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        if TRACKER.attempt(f"{ctx.pipeline}.{ctx.step_id}") == 1:
            raise PluginError("first attempt fails")
        return data.with_columns(pl.col("n") + 1)


def registry() -> PluginRegistry:
    reg = make_registry()
    for cls in (CountTransform, NoneTransform, FlakyTransform):
        reg.register(cls)
    return reg


@pytest.fixture(autouse=True)
def fresh() -> None:
    TRACKER.__init__()  # type: ignore[misc]
    SEEN.clear()


async def quiet(transform: list[dict[str, Any]]) -> Any:
    spec = project({"p": pipeline(transform=transform)})
    return await run_project(spec, sinks=[], registry=registry(), env={})


async def test_steps_run_in_order_each_with_its_own_plugin_and_context() -> None:
    result = await quiet([step("count_transform", f"c{i}") for i in range(5)])
    assert result.status == Status.SUCCEEDED
    assert TRACKER.loads["p.write"]["n"].to_list() == [5]  # wait_extract's n=0, plus one five times
    assert [s[3] for s in SEEN] == ["c0", "c1", "c2", "c3", "c4"]
    assert {s[1:3] for s in SEEN} == {("p", "transform")}
    assert len({s[4] for s in SEEN}) == 5  # a context per step


async def test_a_step_returning_no_table_fails_its_run_naming_it() -> None:
    result = await quiet(
        [step("count_transform", "c"), step("none_transform", "bad"), step("count_transform")]
    )
    assert result.status == Status.FAILED
    assert result.pipelines["p"].error == (
        "pipeline 'p', phase transform, step 'bad' (none_transform): "
        "returned NoneType; expected a polars DataFrame or LazyFrame"
    )
    assert [s[3] for s in SEEN] == ["c"]  # the step after it never ran


async def test_a_failing_first_attempt_is_retried_and_the_run_goes_on() -> None:
    flaky = {**step("flaky_transform", "f"), "retries": 1, "retry_backoff": 0}
    result = await quiet([flaky, step("count_transform", "c")])
    assert result.status == Status.SUCCEEDED
    assert TRACKER.attempt("p.f") == 3  # two attempts ran (this look is the third)
    assert TRACKER.loads["p.write"]["n"].to_list() == [2]


async def test_without_retries_a_failing_step_fails_with_its_cause() -> None:
    result = await quiet([step("flaky_transform", "f"), step("count_transform", "c")])
    assert result.status == Status.FAILED
    assert (
        result.pipelines["p"].error
        == "pipeline 'p', phase transform, step 'f' (flaky_transform): first attempt fails"
    )
    assert SEEN == []


async def test_unknown_plugins_and_bad_args_fail_as_with_a_sink() -> None:
    result = await quiet([step("no_such_plugin", "x")])
    assert "step 'x' (no_such_plugin): unknown plugin 'no_such_plugin'" in (result.pipelines["p"].error or "")
    result = await quiet([step("wait_extract", "wrong_kind")])
    assert "is an extract plugin; this place needs a transform plugin" in (result.pipelines["p"].error or "")
    result = await quiet([step("tag_transform", "t")])  # its required ``tag`` is missing
    assert "step 't' (tag_transform): invalid args: tag: Field required" in (
        result.pipelines["p"].error or ""
    )


async def test_a_step_with_a_timeout_still_times_out() -> None:
    slow = {**step("tag_transform", "slow", tag="x", sleep=1.5), "timeout": 0.1}
    result = await quiet([step("count_transform", "c"), slow])
    assert result.pipelines["p"].error == (
        "pipeline 'p', phase transform, step 'slow' (tag_transform): timed out after 0.1 s"
    )


async def test_cancelling_stops_before_the_next_step() -> None:
    spec = project(
        {"p": pipeline(transform=[step("tag_transform", f"t{i}", tag=f"t{i}", sleep=0.2) for i in range(10)])}
    )
    task = asyncio.create_task(run_project(spec, sinks=[], registry=registry(), env={}))
    while not any(m.startswith("transform t0") for m in TRACKER.names()):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for thread in threading.enumerate():  # the abandoned thread ends its step, then must start no other
        if thread.name == "pipedeck p transform":
            thread.join(5)
    assert len([m for m in TRACKER.names() if m.startswith("transform")]) <= 2
