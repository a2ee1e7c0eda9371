"""``make bench``: run every bench module's ``run(quick)`` and print one table.

Usage: ``python -m bench [--quick] [MODULE...]`` (modules: the names of ``bench/*.py`` defining ``run``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Sequence

import bench
from bench import BenchRow

HEADER = ("workload", "figure", "ideal", "bare asyncio", "pipeline-flow 1.0.8", "x ideal", "x pf", "target")


def bench_modules() -> list[str]:
    """Every module of the bench package that defines ``run``."""
    names = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name == "pipeline_flow_env":
            continue
        if hasattr(importlib.import_module(f"bench.{info.name}"), "run"):
            names.append(info.name)
    return names


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "us" or abs(value) >= 100:
        return f"{value:,.1f} {unit}"
    return f"{value:.3f} {unit}"


def _ratio(value: float, other: float | None) -> str:
    return "n/a" if not other else f"{value / other:.2f}"


def table(rows: Sequence[BenchRow]) -> str:
    """The rows as an aligned text table."""
    cells = [HEADER] + [
        (
            r.workload,
            _fmt(r.figure, r.unit),
            _fmt(r.ideal, r.unit),
            _fmt(r.floor, r.unit),
            _fmt(r.baseline, r.unit),
            _ratio(r.figure, r.ideal),
            _ratio(r.figure, r.baseline),
            r.target,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _run_isolated(name: str, quick: bool) -> list[BenchRow]:
    """One module in a fresh interpreter: the Django benches each configure Django for themselves."""
    cmd = [sys.executable, "-m", "bench", "--json", *(["--quick"] if quick else []), name]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode} (its error is printed above)")
    return [BenchRow(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected bench modules and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (for a smoke test)")
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
    print(
        "figure: Pipedeck; W1 in microseconds per step, W2/W3 in seconds (best run). "
        "x pf < 1: faster than pipeline-flow.\n"
        "bare asyncio: the same waits as plain asyncio tasks, i.e. what this machine's load allows now."
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
