"""W5 streaming: a 10,000,000-row CSV -> filter_rows -> parquet_load with peak memory under 1 GiB.

The pipeline runs in a child process (``python -m bench.w5_streaming --child``) that reports its own peak
resident memory with ``resource.getrusage``; the CSV is generated once (streamed by generate_rows' plan
into a CSV sink, in another child) under ``bench/.data/``. Pipedeck's plugins are called directly:
csv_extract streams an input this large lazily, filter_rows keeps it lazy, parquet_load sinks it.

Run as ``python -m bench.w5_streaming [--quick]`` (quick: 2,000,000 rows, still above the size that
csv_extract reads at once, so it streams too).
"""

from __future__ import annotations

import json
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


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _generate(rows: int, path: Path) -> dict[str, Any]:
    from orchestrator.plugins.generate import generate_frame

    tmp = path.with_suffix(".tmp")
    generate_frame(rows, COLUMNS, seed=5).sink_csv(tmp)
    tmp.replace(path)
    return {"peak_mib": _peak_mib()}


def _pipeline(csv: Path, out: str) -> dict[str, Any]:
    import asyncio
    import logging

    import polars as pl

    from orchestrator.plugins import StepContext
    from orchestrator.plugins.files import CsvExtract, ParquetLoad
    from orchestrator.plugins.frames import FilterRows

    ctx = StepContext("w5_streaming", "bench", "step", "bench", logging.getLogger("bench.w5"), data_root=DATA)

    async def run() -> bool:
        data = await CsvExtract({"path": csv.name}).extract(ctx)
        data = await asyncio.to_thread(FilterRows({"expr": "amount > 10"}).transform, ctx, data)
        await ParquetLoad({"path": out}).load(ctx, data)
        return isinstance(data, pl.LazyFrame)

    start = time.perf_counter()
    streamed = asyncio.run(run())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": _peak_mib(), "streamed": streamed}


def run(quick: bool = False) -> list[Any]:
    """Measure W5: time and the child's peak memory; rows for ``python -m bench``."""
    import polars as pl

    from bench import BenchRow

    rows = 2_000_000 if quick else 10_000_000
    csv = orders_csv(rows)
    out = f"w5_out_{rows}.parquet"
    result = _child("pipeline", str(csv), out)
    written = pl.scan_parquet(DATA / out).select(pl.len()).collect().item()
    (DATA / out).unlink()
    if not result["streamed"]:
        print("W5: the input was read at once, not streamed", file=sys.stderr)
    label = f"W5 {rows:,}-row CSV -> filter -> parquet_load"
    print(f"W5: {written:,} of {rows:,} rows written, peak {result['peak_mib']:.0f} MiB", file=sys.stderr)
    return [
        BenchRow(f"{label}: peak memory", result["peak_mib"], unit="MiB", target=f"< {LIMIT_MIB} MiB"),
        BenchRow(f"{label}: time", result["seconds"], unit="s"),
        BenchRow(f"{label}: rows/s", rows / result["seconds"], unit="rows/s"),
    ]


def main() -> int:
    """``python -m bench.w5_streaming [--quick]``; ``--child generate|pipeline ...`` runs one child."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        what, args = sys.argv[2], sys.argv[3:]
        result = (
            _generate(int(args[0]), Path(args[1]))
            if what == "generate"
            else _pipeline(Path(args[0]), args[1])
        )
        print(json.dumps(result))
        return 0
    from bench.__main__ import table

    print(table(run(quick="--quick" in sys.argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
