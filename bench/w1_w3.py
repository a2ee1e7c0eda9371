"""W1-W3: the engine's overhead and concurrency, beside pipeline-flow 1.0.8 and the ideal.

W1: 1,000 identity transform steps -> per-step overhead = (time with 1,000 - time with 0) / 1,000, in four
    modes: nothing listening (pipeline-flow: logging off), the CLI's progress sink and its JSON events
    (pipeline-flow: its INFO logging, formatted to a stream), and parse + run (nothing listening).
    Goal: at most half of pipeline-flow's in every mode.
W2: 500 extract steps and 50 load steps that each wait 50 ms (ideal 0.1 s).
W3: 100 pipelines of 2 waiting steps at concurrency 10 (ideal 1.0 s); a chain of 20 pipelines by
    ``needs`` (ideal 2.0 s). W2 / W3 goal: within 1.2x the ideal.

Both engines load the very same YAML text (JSON, a subset of YAML) and run plugins of the same names:
here written against Pipedeck's contract, in ``pipeline_flow_env`` against pipeline-flow's. Rounds take
turns (Pipedeck, pipeline-flow, bare asyncio...); within a round each figure is the best of three runs,
measured in-process (interpreter start-up and imports are the ``startup`` bench's).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from bench import BenchRow, against, check, interleaved, pipeline_flow_env
from orchestrator.events import EventSink
from orchestrator.plugins import (
    ExtractPlugin,
    Frame,
    LoadPlugin,
    MergePlugin,
    PluginRegistry,
    StepContext,
    TransformPlugin,
)
from orchestrator.progress import HumanProgress, JsonLines
from orchestrator.scheduler import run_project
from orchestrator.yamlio import load_project

WAIT = 0.05
_ONE_ROW = pl.DataFrame({"x": [1]})


class _Wait(BaseModel):
    seconds: float = Field(0.0, ge=0)


class BenchWaitExtract(ExtractPlugin):
    name = "bench_wait_extract"
    Args = _Wait

    async def extract(self, ctx: StepContext) -> Frame:
        if self.args.seconds:
            await asyncio.sleep(self.args.seconds)
        return _ONE_ROW


class BenchConcatMerge(MergePlugin):
    name = "bench_concat_merge"

    def merge(self, ctx: StepContext, frames: dict[str, Frame]) -> Frame:
        return pl.concat([f for f in frames.values() if isinstance(f, pl.DataFrame)])


class BenchIdentity(TransformPlugin):
    name = "bench_identity"

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        return data


class BenchWaitLoad(LoadPlugin):
    name = "bench_wait_load"
    Args = _Wait

    async def load(self, ctx: StepContext, data: Frame) -> None:
        if self.args.seconds:
            await asyncio.sleep(self.args.seconds)


def bench_registry() -> PluginRegistry:
    """Only the bench plugins (the built-ins are not needed and would cost start-up time)."""
    reg = PluginRegistry.empty()
    for cls in (BenchWaitExtract, BenchConcatMerge, BenchIdentity, BenchWaitLoad):
        reg.register(cls)
    return reg


# -- the workloads, as project files both engines read ---------------------------------------------------


def _step(step_id: str, plugin: str, seconds: float | None = None) -> dict[str, Any]:
    return {
        "id": step_id,
        "plugin": plugin,
        **({"args": {"seconds": seconds}} if seconds is not None else {}),
    }


def _pipeline(
    extracts: int, loads: int, *, wait: float, transforms: int = 0, needs: str | None = None
) -> dict[str, Any]:
    extract: dict[str, Any] = {"steps": [_step(f"e{i}", "bench_wait_extract", wait) for i in range(extracts)]}
    if extracts > 1:
        extract["merge"] = _step("merge", "bench_concat_merge")
    pipeline: dict[str, Any] = {
        "type": "ETL",
        "phases": {
            "extract": extract,
            # pipeline-flow 1.0.8 needs the transform phase of an ETL pipeline present, even empty
            "transform": {"steps": [_step(f"t{i}", "bench_identity") for i in range(transforms)]},
            "load": {"steps": [_step(f"l{i}", "bench_wait_load", wait) for i in range(loads)]},
        },
    }
    if needs:
        pipeline["needs"] = needs
    return pipeline


def _project(pipelines: dict[str, dict[str, Any]], concurrency: int = 2) -> str:
    return json.dumps({"concurrency": concurrency, "pipelines": pipelines}, indent=1)


def w1(transforms: int) -> str:
    return _project({"w1": _pipeline(1, 1, wait=0.0, transforms=transforms)})


def w2() -> str:
    return _project({"w2": _pipeline(500, 50, wait=WAIT)})


def w3_many() -> str:
    return _project({f"p{i:03}": _pipeline(1, 1, wait=WAIT) for i in range(100)}, concurrency=10)


def w3_chain() -> str:
    chain = {f"c{i:02}": _pipeline(1, 1, wait=WAIT, needs=f"c{i - 1:02}" if i else None) for i in range(20)}
    return _project(chain, concurrency=10)


# -- measuring -----------------------------------------------------------------------------------------

STEPS = 1000
#: W1 modes: (label, the sink Pipedeck's CLI would use, pipeline-flow's logging, parse included)
MODES: tuple[tuple[str, str | None, bool, bool], ...] = (
    ("nothing listening", None, False, False),
    ("the CLI's progress sink", "progress", True, False),
    ("JSON events", "json", True, False),
    ("parse + run", None, False, True),
)


def _sinks(kind: str | None) -> list[EventSink]:
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed with the process
    if kind == "json":
        return [JsonLines(devnull)]
    if kind == "progress":  # what ``python -m orchestrator run`` prints when stdout is not a terminal
        return [HumanProgress(devnull, live=False)]
    return []


def run_once(yaml_text: str, kind: str | None = None, *, checked: bool = False) -> tuple[float, float]:
    """Seconds to load ``yaml_text`` and to run it; it must succeed (``checked``: and every step report
    its end, through a sink that is not timed otherwise)."""
    registry = bench_registry()
    events: list[Any] = []
    sinks = [*_sinks(kind), *([events.append] if checked else [])]
    t0 = time.perf_counter()
    spec = load_project(yaml_text, registry=registry)
    t1 = time.perf_counter()
    result = asyncio.run(run_project(spec, sinks=sinks, registry=registry, env={}))
    t2 = time.perf_counter()
    if not result.ok:
        raise RuntimeError(f"bench workload failed: {result.error}")
    if checked:
        check("step_finished events", sum(e.kind == "step_finished" for e in events), _steps(spec))
    return t1 - t0, t2 - t1


def _steps(spec: Any) -> int:
    """Every step of every pipeline: pre, steps, merge, post of each phase."""
    count = 0
    for pipeline in spec.pipelines.values():
        for phase in vars(pipeline.phases).values():
            if phase is not None:
                count += sum(len(getattr(phase, slot, None) or []) for slot in ("pre", "steps", "post"))
                count += getattr(phase, "merge", None) is not None
    return count


def _ours_per_step(kind: str | None, parse: bool) -> float:
    """Microseconds per step of one round: the best of three runs with STEPS steps and with none."""

    def best(text: str) -> float:
        return min(sum(run_once(text, kind)) if parse else run_once(text, kind)[1] for _ in range(3))

    return (best(w1(STEPS)) - best(w1(0))) / STEPS * 1e6


def _theirs_per_step() -> dict[str, float]:
    """pipeline-flow's microseconds per step of one round, for each of its two logging settings."""
    texts = {"n": w1(STEPS), "zero": w1(0)}
    quiet = pipeline_flow_env.measure(texts, repeat=3, logged=False)
    logged = pipeline_flow_env.measure(texts, repeat=3, logged=True)

    def per_step(result: dict[str, dict[str, float]], key: str) -> float:
        return (result["n"][key] - result["zero"][key]) / STEPS * 1e6

    return {
        "quiet": per_step(quiet, "run"),
        "logged": per_step(logged, "run"),
        "total": per_step(quiet, "total"),
    }


def _w1_rows(rounds: int) -> list[BenchRow]:
    run_once(w1(STEPS), "json", checked=True)  # every step ran and reported; warms imports up
    theirs: list[dict[str, float]] = []
    why = ""
    ours: dict[str, list[float]] = {label: [] for label, *_ in MODES}
    for _ in range(rounds):
        for label, kind, _, parse in MODES:
            ours[label].append(_ours_per_step(kind, parse))
        try:
            theirs.append(_theirs_per_step())
        except (pipeline_flow_env.BaselineUnavailable, OSError) as exc:
            why = f"pipeline-flow unavailable: {exc}"
    rows = []
    for label, _, logged, parse in MODES:
        key = "total" if parse else ("logged" if logged else "quiet")
        versus = "pipeline-flow" + (" (INFO logs)" if logged else "")
        their = [t[key] for t in theirs] or None
        rows.append(
            against(f"W1 per-step overhead, {label}", "us", ours[label], versus, their, at_most=0.5, note=why)
        )
    return rows


async def _floor_tasks(workload: str) -> None:
    """The workload's waits as bare asyncio tasks: no engine at all."""
    if workload == "w2":
        await asyncio.gather(*(asyncio.sleep(WAIT) for _ in range(500)))
        await asyncio.gather(*(asyncio.sleep(WAIT) for _ in range(50)))
    elif workload == "w3_many":
        limit = asyncio.Semaphore(10)

        async def two_steps() -> None:
            async with limit:
                await asyncio.sleep(WAIT)
                await asyncio.sleep(WAIT)

        await asyncio.gather(*(two_steps() for _ in range(100)))
    else:
        for _ in range(20):
            await asyncio.sleep(WAIT)
            await asyncio.sleep(WAIT)


def _floor(workload: str) -> float:
    started = time.perf_counter()
    asyncio.run(_floor_tasks(workload))
    return time.perf_counter() - started


def _theirs_run(text: str) -> float:
    return pipeline_flow_env.measure({"w": text}, repeat=1, logged=False)["w"]["run"]


def _wait_rows(rounds: int) -> list[BenchRow]:
    rows = []
    for key, name, text, ideal in (
        ("w2", "W2 500 extract + 50 load steps of 50 ms", w2(), 0.1),
        ("w3_many", "W3 100 pipelines x 2 steps, concurrency 10", w3_many(), 1.0),
        ("w3_chain", "W3 chain of 20 pipelines by needs", w3_chain(), 2.0),
    ):
        run_once(text, "json", checked=True)  # every step ran; warms up
        sides: dict[str, Callable[[], float]] = {
            "ours": lambda t=text: run_once(t)[1],
            "floor": lambda k=key: _floor(k),
        }
        try:
            _theirs_run(text)
            sides["theirs"] = lambda t=text: _theirs_run(t)
        except (pipeline_flow_env.BaselineUnavailable, OSError) as exc:
            print(f"pipeline-flow unavailable: {exc}", file=sys.stderr)
        figures = interleaved(rounds, sides)
        context = f"bare asyncio median {statistics.median(figures['floor']):.3f} s"
        if "theirs" in figures:
            context += f"; pipeline-flow median {statistics.median(figures['theirs']):.3f} s"
        rows.append(
            against(f"{name}, run", "s", figures["ours"], "ideal", [ideal], at_most=1.2, note=context)
        )
    return rows


def run(quick: bool = False) -> list[BenchRow]:
    """Measure W1-W3 for Pipedeck and pipeline-flow 1.0.8, rounds interleaved."""
    return _w1_rows(3 if quick else 7) + _wait_rows(2 if quick else 5)
