"""Benchmarks run by ``make bench`` (``python -m bench``): each module's ``run(quick)`` returns rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchRow:
    """One measured figure, beside its ideal and the pipeline-flow 1.0.8 figure for the same workload."""

    workload: str
    figure: float
    unit: str = "s"
    ideal: float | None = None
    baseline: float | None = None  # pipeline-flow 1.0.8, measured in the same run; None when unavailable
    target: str = ""  # what the issue asks, e.g. "<= 1.2x ideal"
    floor: float | None = None  # the same waits in bare asyncio on this machine now: what load allows
