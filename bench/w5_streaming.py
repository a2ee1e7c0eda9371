"""W5 streaming: a 10,000,000-row CSV -> filter_rows amount > 10 -> csv_load, memory under 1 GiB.

Pipedeck runs the YAML as a user would, ``python -m orchestrator run w5.yaml`` (its peak memory read with
``wait4``), and in-process through the CLI's ``main`` in a child that reports its own peak. The floor is
Polars alone doing the same in a child (``scan_csv -> filter -> sink_csv``). Rounds take turns; each output
is checked (rows and the sum of ids) before its time counts. Goals: the CLI within 1.2x of Polars alone as
a whole process (start-up and imports on both sides), the in-process run within 1.2x of Polars alone
(after its imports), and both below 1 GiB of memory. The CSV is generated once under ``bench/.data/``.

``python -m bench w5_streaming [--quick]`` (quick: 2,000,000 rows, still above the size csv_extract
reads at once, so it streams too).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
LIMIT_MIB = 1024
COLUMNS = {
    "id": "row_number",
    "customer_id": "random_int(1, 50000)",
    "amount": "round(random() * 100, 2)",
    "country": "random_choice('FR', 'DE', 'ES', 'IT', 'PT', 'NL', 'BE', 'PL')",
    "ts": "TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL '1 second'",
}
OUT = "w5_out.csv"


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.w5_streaming", "--child", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"W5 child {args[0]} failed: {done.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def orders_csv(rows: int) -> Path:
    """The generated CSV, streamed to disk by a child process the first time, then reused."""
    path = DATA / f"w5_orders_{rows}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        _child("generate", str(rows), str(path))
    return path


def project_yaml(csv: Path) -> str:
    return f"""\
pipelines:
  w5_streaming:
    type: ETL
    phases:
      extract: {{steps: [{{id: orders, plugin: csv_extract, args: {{path: {csv.name}}}}}]}}
      transform: {{steps: [{{id: big_only, plugin: filter_rows, args: {{expr: amount > 10}}}}]}}
      load: {{steps: [{{id: out, plugin: csv_load, args: {{path: {OUT}}}}}]}}
"""


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# -- in the children -------------------------------------------------------------------------------------


def _generate(rows: int, path: Path) -> dict[str, Any]:
    from orchestrator.plugins.generate import generate_frame

    tmp = path.with_suffix(".tmp")
    generate_frame(rows, COLUMNS, seed=5).sink_csv(tmp)
    tmp.replace(path)
    return {"peak_mib": _peak_mib()}


def _in_process(yaml_path: Path) -> dict[str, Any]:
    """The CLI's ``main`` in this process, its imports done first (what a long-lived worker pays)."""
    import contextlib
    import io

    import polars  # noqa: F401 - imported before timing, as in a process that already ran a step

    from orchestrator.cli import main

    os.environ["PIPEDECK_DATA_ROOT"] = str(DATA)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["run", str(yaml_path)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"W5 run failed: {out.getvalue()[-800:]}")
    return {"seconds": seconds, "peak_mib": _peak_mib()}


def _polars_alone(csv: Path) -> dict[str, Any]:
    import polars as pl

    start = time.perf_counter()
    pl.scan_csv(csv).filter(pl.col("amount") > 10).sink_csv(DATA / OUT)
    return {"seconds": time.perf_counter() - start, "peak_mib": _peak_mib()}


# -- the bench -------------------------------------------------------------------------------------------


def _cli(yaml_path: Path) -> tuple[float, float]:
    """Seconds and peak MiB of ``python -m orchestrator run`` as a whole process."""
    env = {**os.environ, "PIPEDECK_DATA_ROOT": str(DATA)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(yaml_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"W5 CLI run failed: {proc.stderr.read().decode()[-800:] if proc.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024


def run(quick: bool = False) -> list[Any]:
    """W5 rows for ``python -m bench``."""
    import polars as pl

    from bench import against, check, under

    rows = 2_000_000 if quick else 10_000_000
    csv = orders_csv(rows)
    yaml_path = DATA / "w5.yaml"
    yaml_path.write_text(project_yaml(csv))
    want = (
        pl.scan_csv(csv).filter(pl.col("amount") > 10).select(pl.len(), pl.col("id").sum()).collect().row(0)
    )
    figures: dict[str, list[float]] = {
        "cli": [],
        "cli_mib": [],
        "inproc": [],
        "inproc_mib": [],
        "floor": [],
        "floor_process": [],
    }

    def checked() -> None:
        out = DATA / OUT
        check(
            "W5 output (rows, sum of ids)",
            pl.scan_csv(out).select(pl.len(), pl.col("id").sum()).collect().row(0),
            want,
        )
        out.unlink()

    for _ in range(2 if quick else 3):
        seconds, mib = _cli(yaml_path)
        checked()
        figures["cli"].append(seconds)
        figures["cli_mib"].append(mib)
        inside = _child("pipeline", str(yaml_path))
        checked()
        figures["inproc"].append(inside["seconds"])
        figures["inproc_mib"].append(inside["peak_mib"])
        started = time.perf_counter()
        floor = _child("polars", str(csv))
        figures["floor_process"].append(time.perf_counter() - started)  # start-up and imports too
        checked()
        figures["floor"].append(floor["seconds"])
    label = f"W5 {rows:,}-row CSV -> filter -> csv_load"
    return [
        against(
            f"{label}, CLI",
            "s",
            figures["cli"],
            "Polars alone, whole process",
            figures["floor_process"],
            at_most=1.2,
        ),
        against(
            f"{label}, in-process", "s", figures["inproc"], "Polars alone", figures["floor"], at_most=1.2
        ),
        under(f"{label}, CLI peak memory", "MiB", figures["cli_mib"], LIMIT_MIB),
        under(f"{label}, in-process peak memory", "MiB", figures["inproc_mib"], LIMIT_MIB),
    ]


def main() -> int:
    """``--child generate|pipeline|polars ...`` runs one child; otherwise the bench."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        what, args = sys.argv[2], sys.argv[3:]
        if what == "generate":
            result = _generate(int(args[0]), Path(args[1]))
        elif what == "pipeline":
            result = _in_process(Path(args[0]))
        else:
            result = _polars_alone(Path(args[0]))
        print(json.dumps(result))
        return 0
    from bench.__main__ import main as bench_main

    return bench_main(["w5_streaming", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
