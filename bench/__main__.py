"""``make bench``: run every bench module's ``run(quick)``, each in a fresh interpreter, and print one table.

Usage: ``python -m bench [--quick] [MODULE...]`` (modules: the names of ``bench/*.py`` defining ``run``).
The exit status is 1 when a module failed (a wrong result, a crash), not when a goal was missed: the table
says PASS or FAIL per row.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import pkgutil
import subprocess
import sys
from collections.abc import Sequence

import bench
from bench import BenchRow

HEADER = ("workload", "best", "median", "compared with", "best", "median", "ratio", "goal", "result")
#: the order of the table (modules not listed come after, by name)
ORDER = (
    "w1_w3",
    "startup",
    "w4_orders",
    "outputs",
    "loads",
    "w5_streaming",
    "isolation",
    "runs",
    "runs_scaleout",
    "pages",
)


def bench_modules() -> list[str]:
    """Every module of the bench package that defines ``run``, in table order."""
    names = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name == "pipeline_flow_env":
            continue
        if hasattr(importlib.import_module(f"bench.{info.name}"), "run"):
            names.append(info.name)
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    if unit == "us" or abs(value) >= 100:
        return f"{value:,.1f} {unit}"
    return f"{value:.3f} {unit}"


def _result(row: BenchRow) -> str:
    return "-" if row.passed is None else ("PASS" if row.passed else "FAIL")


def table(rows: Sequence[BenchRow]) -> str:
    """The rows as an aligned text table, notes under it."""
    cells = [HEADER] + [
        (
            r.workload,
            _fmt(r.best, r.unit),
            _fmt(r.median, r.unit),
            r.versus or "-",
            _fmt(r.versus_best, r.unit),
            _fmt(r.versus_median, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.goal or "-",
            _result(r),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    left = {0, 3, 7}
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    notes = [f"  {r.workload}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def _run_isolated(name: str, quick: bool) -> list[BenchRow]:
    """One module in a fresh interpreter: imports, Django settings and caches of one do not help another."""
    cmd = [sys.executable, "-m", "bench", "--json", *(["--quick"] if quick else []), name]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode} (its error is printed above)")
    return [BenchRow(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected bench modules and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and rows (a smoke test)")
    parser.add_argument("--json", action="store_true", help="run in this process, print the rows as JSON")
    parser.add_argument("modules", nargs="*", help="bench modules to run (default: all)")
    args = parser.parse_args(argv)
    if args.json:
        rows = [r for name in args.modules for r in importlib.import_module(f"bench.{name}").run(args.quick)]
        print(json.dumps([dataclasses.asdict(r) for r in rows]))
        return 0
    rows = []
    failed = []
    for name in args.modules or bench_modules():
        print(f"running bench.{name}...", file=sys.stderr, flush=True)
        try:
            rows.extend(_run_isolated(name, args.quick))
        except Exception as exc:  # one broken workload must not hide the others' figures
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
    print(table(rows))
    goals = [r for r in rows if r.passed is not None]
    kind = "quick" if args.quick else "full"
    print(
        f"\n{sum(bool(r.passed) for r in goals)} of {len(goals)} goals met ({kind} run). "
        "best / median over interleaved rounds; ratio and result from the medians. "
        "W1 in microseconds per step (a negative figure is shown as measured)."
    )
    if failed:
        print(f"FAILED to run (no figures): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
