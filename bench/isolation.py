"""Run isolation's cost: every run of the web app executes in a child process forked from a fork server.

I1: a small run of built-in plugins (``generate_rows`` of 10 rows into ``csv_load``) in this process
    (``run_project``) and in a child (``Sandbox.run``: fork, send the request, stream the events back,
    exit), as a web run has it: what the fork server did not import or start, each child pays for. The
    difference is what isolation adds to every run (target: under 150 ms).
I2: W2 (500 + 50 steps of 50 ms) and W3 (100 pipelines at concurrency 10) of ``bench.w1_w3``, the same
    two ways.
Rounds are interleaved (in-process, child, in-process, child...); the rows give the best and the median
of the per-round difference.
Each run's events are checked: the same kinds and count both ways, ending ``succeeded``.
The web app's own figure (Run button -> first step, child included) is R1 in ``bench.runs``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import BenchRow, shown, under, w1_w3
from orchestrator.control import RunControl
from orchestrator.events import Event
from orchestrator.plugins.registry import PluginRegistry
from orchestrator.sandbox import Limits, RunRequest, Sandbox
from orchestrator.scheduler import run_project
from orchestrator.spec import ProjectSpec

SMALL = {
    "pipelines": {
        "t": {
            "type": "ETL",
            "phases": {
                "extract": {
                    "steps": [
                        {"id": "e", "plugin": "generate_rows", "args": {"rows": 10, "columns": {"x": "i"}}}
                    ]
                },
                "load": {"steps": [{"id": "l", "plugin": "csv_load", "args": {"path": "out/small.csv"}}]},
            },
        }
    }
}


async def _in_process(spec: ProjectSpec, registry: PluginRegistry, root: str) -> tuple[float, Counter[str]]:
    events: list[Event] = []
    started = time.perf_counter()
    await run_project(spec, sinks=[events.append], registry=registry, data_root=Path(root))
    return time.perf_counter() - started, Counter(e.kind for e in events)


async def _in_child(sandbox: Sandbox, spec: dict[str, Any], root: str) -> tuple[float, Counter[str]]:
    kinds: Counter[str] = Counter()
    finished: list[dict[str, Any]] = []

    def on_events(events: list[dict[str, Any]]) -> None:
        kinds.update(e["kind"] for e in events)
        finished.extend(e for e in events if e["kind"] == "run_finished")

    request = RunRequest(run_id="bench", spec=spec, data_root=root, limits=Limits(threads=2))
    started = time.perf_counter()
    ended = await sandbox.run(request, on_events, RunControl())
    elapsed = time.perf_counter() - started
    if not ended.clean or not finished or finished[0]["status"] != "succeeded":
        raise RuntimeError(f"the child run failed: {ended} {finished}")
    return elapsed, kinds


async def _compare(
    sandbox: Sandbox, registry: PluginRegistry, text: str, rounds: int, root: str
) -> tuple[list[float], list[float]]:
    spec = ProjectSpec.model_validate(json.loads(text))
    data = spec.model_dump(mode="json")
    local, child = [], []
    for _ in range(rounds):
        took, expected = await _in_process(spec, registry, root)
        local.append(took)
        took, seen = await _in_child(sandbox, data, root)
        child.append(took)
        if seen != expected:
            raise RuntimeError(f"the child's events differ: {seen} != {expected}")
    return local, child


async def _measure(quick: bool) -> list[BenchRow]:
    builtins = Sandbox()  # what a web run forks from
    benches = Sandbox(plugin_modules=["bench.w1_w3"])
    builtins.start()
    benches.start()
    root = tempfile.mkdtemp(prefix="pipedeck-bench-isolation-")
    installed = PluginRegistry()
    rows = []
    try:
        for sandbox, spec in ((builtins, SMALL), (benches, json.loads(w1_w3.w2()))):
            await _in_child(sandbox, spec, root)  # the fork server's imports are not a run's cost
        await _in_process(ProjectSpec.model_validate(SMALL), installed, root)  # nor this process's
        local, child = await _compare(builtins, installed, json.dumps(SMALL), 10 if quick else 50, root)
        ms = 1000.0
        added = [(c - loc) * ms for c, loc in zip(child, local, strict=True)]
        rows += [
            shown(
                "I1 trivial run in a child",
                "ms",
                [c * ms for c in child],
                versus="in-process",
                theirs=[loc * ms for loc in local],
            ),
            under("I1 added by the child per run", "ms", added, 150),
        ]
        for label, text in (
            ("I2 W2 500 + 50 steps of 50 ms", w1_w3.w2()),
            ("I2 W3 100 pipelines x 2 steps", w1_w3.w3_many()),
        ):
            local, child = await _compare(benches, w1_w3.bench_registry(), text, 2 if quick else 5, root)
            rows.append(
                under(
                    f"{label}: added by the child",
                    "s",
                    [c - loc for c, loc in zip(child, local, strict=True)],
                    0.150,
                    note=f"in a child median {statistics.median(child):.3f} s, "
                    f"in-process {statistics.median(local):.3f} s",
                )
            )
    finally:
        builtins.close()
        benches.close()
    return rows


def run(quick: bool = False) -> list[BenchRow]:
    """Rows for ``python -m bench``."""
    return asyncio.run(_measure(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
