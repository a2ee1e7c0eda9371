"""W1-W3: the engine's overhead and concurrency, beside the ideal and beside pipeline-flow 1.0.8.

W1: 200 identity transform steps -> per-step overhead = (time with 200 - time with 0) / 200.
W2: 500 extract steps and 50 load steps that each wait 50 ms (ideal 0.1 s).
W3: 100 pipelines of 2 waiting steps at concurrency 10 (ideal 1.0 s); a chain of 20 pipelines by
    ``needs`` (ideal 2.0 s).

Both engines load the very same YAML text (JSON, a subset of YAML) and run plugins of the same names:
here written against Pipedeck's contract, in ``pipeline_flow_env`` against pipeline-flow's. Each figure
is the best of several runs, measured in-process (interpreter start-up and imports excluded).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from bench import BenchRow, pipeline_flow_env
from orchestrator.cli import JsonLines
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


def measure_pipedeck(yaml_text: str, *, repeat: int, logged: bool) -> dict[str, float]:
    """Best-of-``repeat`` seconds to load, to run, and for both (events to JSON lines when ``logged``)."""
    registry = bench_registry()
    sinks: list[EventSink] = [JsonLines(open(os.devnull, "w"))] if logged else []  # noqa: SIM115
    best = {"parse": float("inf"), "run": float("inf"), "total": float("inf")}
    for _ in range(repeat):
        t0 = time.perf_counter()
        spec = load_project(yaml_text, registry=registry)
        t1 = time.perf_counter()
        result = asyncio.run(run_project(spec, sinks=sinks, registry=registry, env={}))
        t2 = time.perf_counter()
        if not result.ok:
            raise RuntimeError(f"bench workload failed: {result.error}")
        best = {
            "parse": min(best["parse"], t1 - t0),
            "run": min(best["run"], t2 - t1),
            "total": min(best["total"], t2 - t0),
        }
    return best


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


def asyncio_floor(workload: str, repeat: int) -> float:
    """Best-of-``repeat`` seconds of ``_floor_tasks``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        asyncio.run(_floor_tasks(workload))
        best = min(best, time.perf_counter() - started)
    return best


def _baseline(yaml_text: str, *, repeat: int, logged: bool) -> dict[str, float] | None:
    try:
        return pipeline_flow_env.measure(yaml_text, repeat=repeat, logged=logged)
    except (pipeline_flow_env.BaselineUnavailable, OSError) as exc:
        print(f"pipeline-flow baseline unavailable: {exc}", file=sys.stderr)
        return None


def _per_step(
    with_steps: dict[str, float] | None, without: dict[str, float] | None, key: str, n: int
) -> float | None:
    if with_steps is None or without is None:
        return None
    return max(0.0, with_steps[key] - without[key]) / n * 1e6


def _w1_rows(repeat: int) -> list[BenchRow]:
    n = 200
    rows = []
    for logged, label in (
        (False, "nothing listening / logging off"),
        (True, "events as JSON lines / INFO logs"),
    ):
        ours = {k: measure_pipedeck(w1(k), repeat=repeat, logged=logged) for k in (0, n)}
        theirs = {k: _baseline(w1(k), repeat=repeat, logged=logged) for k in (0, n)}
        keys = (("run", "run"), ("total", "load+run")) if not logged else (("run", "run"),)
        for key, what in keys:
            figure = _per_step(ours[n], ours[0], key, n)
            assert figure is not None
            rows.append(
                BenchRow(
                    f"W1 per-step overhead, {what} ({label})",
                    figure,
                    unit="us",
                    ideal=0.0,
                    baseline=_per_step(theirs[n], theirs[0], key, n),
                    target="<= 0.5x pf",
                )
            )
    return rows


def run(quick: bool = False) -> list[BenchRow]:
    """Measure W1-W3 for Pipedeck and pipeline-flow 1.0.8."""
    repeat = 2 if quick else 5
    rows = _w1_rows(repeat * 2)
    for key, name, text, ideal in (
        ("w2", "W2 500 extract + 50 load steps of 50 ms", w2(), 0.1),
        ("w3_many", "W3 100 pipelines x 2 steps, concurrency 10", w3_many(), 1.0),
        ("w3_chain", "W3 chain of 20 pipelines by needs", w3_chain(), 2.0),
    ):
        ours = measure_pipedeck(text, repeat=repeat, logged=False)
        theirs = _baseline(text, repeat=repeat, logged=False)
        floor = asyncio_floor(key, repeat)
        for what in ("run", "load+run"):
            part = "run" if what == "run" else "total"
            rows.append(
                BenchRow(
                    f"{name}, {what}",
                    ours[part],
                    ideal=ideal,
                    baseline=theirs[part] if theirs else None,
                    target="<= 1.2x ideal",
                    floor=floor,
                )
            )
    return rows
