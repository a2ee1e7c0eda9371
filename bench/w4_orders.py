"""W4: a 1,000,000-row orders CSV -> filter_rows amount > 10 -> with_columns amount_eur -> PostgreSQL.

The rows go to PostgreSQL with ``sql_load`` while an ``aggregate`` by country is loaded beside them. Printed
beside (a) ``psql \\copy`` of the same CSV into a fresh table, the physical limit, and (b) the same logic
written with pandas and run by pipeline-flow 1.0.8 (its own ``sqlalchemy_query_loader`` over psycopg), in
``.bench-venvs/pipeline-flow`` (created on first use).
Targets: within 2x of ``\\copy``, at least 3x pipeline-flow + pandas.

Pipedeck's plugins are called directly, phase by phase as the engine would (one extract, the transforms
in order, the two loads concurrently). Every figure is the best of several runs on fresh tables.

Run as ``python -m bench.w4_orders [--quick]``. Module-level imports are stdlib only: the pipeline-flow
side of this file runs inside that environment (``python bench/w4_orders.py --pipeline-flow-job``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
PG_URL = os.environ.get("PIPEDECK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PF_PACKAGES = ("pandas>=2.2", "psycopg[binary]>=3.2")
RATE = 0.92
ORDERS_DDL = "id BIGINT, customer_id BIGINT, amount DOUBLE PRECISION, country TEXT, ts TIMESTAMP"
COLUMNS = {
    "id": "row_number",
    "customer_id": "random_int(1, 50000)",
    "amount": "round(random() * 100, 2)",
    "country": "random_choice('FR', 'DE', 'ES', 'IT', 'PT', 'NL', 'BE', 'PL')",
    "ts": "TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL '1 second'",
}


def orders_csv(rows: int) -> Path:
    """The generated orders CSV (made once with generate_rows + csv_load, then reused)."""
    import asyncio

    from orchestrator.plugins.files import CsvLoad
    from orchestrator.plugins.generate import GenerateRows

    path = DATA / f"orders_{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    ctx = _ctx()

    async def make() -> None:
        frame = await GenerateRows({"rows": rows, "columns": COLUMNS, "seed": 4}).extract(ctx)
        await CsvLoad({"path": path.name}).load(ctx, frame)

    asyncio.run(make())
    return path


def _ctx() -> Any:
    import logging

    from orchestrator.plugins import StepContext

    return StepContext("w4_orders", "bench", "step", "bench", logging.getLogger("bench.w4"), data_root=DATA)


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


# -- Pipedeck --------------------------------------------------------------------------------------------


async def _pipedeck_once(csv: Path) -> float:
    import asyncio

    from orchestrator.plugins.files import CsvExtract
    from orchestrator.plugins.frames import Aggregate, FilterRows, WithColumns
    from orchestrator.plugins.sql import SqlLoad

    ctx = _ctx()
    start = time.perf_counter()
    data = await CsvExtract({"path": csv.name}).extract(ctx)
    data = await asyncio.to_thread(FilterRows({"expr": "amount > 10"}).transform, ctx, data)
    data = await asyncio.to_thread(
        WithColumns({"columns": {"amount_eur": f"amount * {RATE}"}}).transform, ctx, data
    )

    async def rows() -> None:
        await SqlLoad({"dsn": PG_URL, "table": "w4_orders"}).load(ctx, data)

    async def by_country() -> None:
        aggs = {"orders": "count(id)", "total_eur": "sum(amount_eur)"}
        totals = await asyncio.to_thread(Aggregate({"by": ["country"], "aggs": aggs}).transform, ctx, data)
        await SqlLoad({"dsn": PG_URL, "table": "w4_by_country"}).load(ctx, totals)

    await asyncio.gather(rows(), by_country())
    return time.perf_counter() - start


def measure_pipedeck(csv: Path, repeat: int) -> float:
    """Best-of-``repeat`` seconds for the whole pipeline, into a fresh orders table (ts TIMESTAMP, as for
    \\copy) and a by-country table sql_load creates."""
    import asyncio

    best = float("inf")
    for _ in range(repeat):
        _pg(
            "DROP TABLE IF EXISTS w4_orders; DROP TABLE IF EXISTS w4_by_country;"
            f"CREATE TABLE w4_orders ({ORDERS_DDL}, amount_eur DOUBLE PRECISION)"
        )
        best = min(best, asyncio.run(_pipedeck_once(csv)))
    _pg("DROP TABLE IF EXISTS w4_orders; DROP TABLE IF EXISTS w4_by_country")
    return best


# -- psql \copy, the physical limit ----------------------------------------------------------------------


def measure_copy(csv: Path, repeat: int) -> float:
    """Best-of-``repeat`` seconds for psql to create a table and \\copy the CSV into it (one transaction)."""
    script = (
        "BEGIN;\nDROP TABLE IF EXISTS w4_copy;\n"
        f"CREATE TABLE w4_copy ({ORDERS_DDL});\n"
        f"\\copy w4_copy FROM '{csv}' WITH (FORMAT csv, HEADER true)\nCOMMIT;\n"
    )
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", PG_URL], input=script, text=True, check=True
        )
        best = min(best, time.perf_counter() - start)
    _pg("DROP TABLE IF EXISTS w4_copy")
    return best


# -- pipeline-flow 1.0.8 + pandas ------------------------------------------------------------------------


def _pf_ready() -> tuple[Path | None, str | None]:
    """pipeline-flow's Python (its venv created on first use, pandas added), or None and why not."""
    from bench.pipeline_flow_env import BaselineUnavailable, ensure_venv

    try:
        python = ensure_venv()
    except (BaselineUnavailable, OSError) as exc:
        return None, str(exc)
    check = [str(python), "-c", "import pandas, psycopg, pipeline_flow"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return python, None
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *PF_PACKAGES], capture_output=True, text=True
    )
    if install.returncode != 0:
        return None, f"could not install {', '.join(PF_PACKAGES)} there: {install.stderr.strip()[-300:]}"
    return python, None


def measure_pipeline_flow(csv: Path, repeat: int) -> float | None:
    """Best-of-``repeat`` seconds of the same workload in pandas under pipeline-flow 1.0.8, or None."""
    python, why = _pf_ready()
    if python is None:
        print(f"pipeline-flow + pandas baseline skipped: {why}", file=sys.stderr)
        return None
    _pg(
        "DROP TABLE IF EXISTS w4_pf_orders; DROP TABLE IF EXISTS w4_pf_by_country;"
        f"CREATE TABLE w4_pf_orders ({ORDERS_DDL}, amount_eur DOUBLE PRECISION);"
        "CREATE TABLE w4_pf_by_country (country TEXT, orders BIGINT, total_eur DOUBLE PRECISION)"
    )
    job = json.dumps({"csv": str(csv), "url": PG_URL, "repeat": repeat, "rate": RATE})
    try:
        done = subprocess.run(
            [str(python), __file__, "--pipeline-flow-job"],
            input=job,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
    finally:
        _pg("DROP TABLE IF EXISTS w4_pf_orders; DROP TABLE IF EXISTS w4_pf_by_country")
    if done.returncode != 0:
        print(f"pipeline-flow + pandas baseline failed: {done.stderr.strip()[-800:]}", file=sys.stderr)
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def _pf_project(job: dict[str, Any]) -> str:
    from urllib.parse import urlsplit

    url = urlsplit(job["url"])
    db = {
        "db_user": url.username or "postgres",
        "db_password": url.password or "",
        "db_host": url.hostname or "127.0.0.1",
        "db_port": str(url.port or 5432),
        "db_name": url.path.lstrip("/"),
        "driver": "postgresql+psycopg",
        "batch_size": 100_000,
    }
    insert_rows = (
        "INSERT INTO w4_pf_orders (id, customer_id, amount, country, ts, amount_eur) "
        "VALUES (:id, :customer_id, :amount, :country, :ts, :amount_eur)"
    )
    insert_totals = "INSERT INTO w4_pf_by_country VALUES (:country, :orders, :total_eur)"
    pipeline = {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "orders", "plugin": "w4_pandas_csv", "args": {"path": job["csv"]}}]},
            "transform": {
                "steps": [
                    {
                        "id": "big_only",
                        "plugin": "w4_pandas_filter",
                        "args": {"column": "amount", "above": 10},
                    },
                    {"id": "eur", "plugin": "w4_pandas_eur", "args": {"rate": job["rate"]}},
                ]
            },
            "load": {
                "steps": [
                    {"id": "rows", "plugin": "sqlalchemy_query_loader", "args": {**db, "query": insert_rows}},
                    {
                        "id": "by_country",
                        "plugin": "w4_pandas_by_country",
                        "args": {**db, "query": insert_totals},
                    },
                ]
            },
        },
    }
    return json.dumps({"pipelines": {"w4_orders": pipeline}})


def _pf_define_plugins() -> None:
    """The pandas plugins, written against pipeline-flow's API (runs inside its environment)."""
    import pandas as pd
    from pipeline_flow.plugins import IExtractPlugin, ITransformPlugin
    from pipeline_flow.plugins.load.sqlalchemy_query_async import AsyncSQLAlchemyQueryLoader

    class PandasCsv(IExtractPlugin, plugin_name="w4_pandas_csv"):  # type: ignore[call-arg]
        def __init__(self, plugin_id: str, path: str) -> None:
            super().__init__(plugin_id)
            self.path = path

        async def __call__(self) -> Any:
            return pd.read_csv(self.path)

    class PandasFilter(ITransformPlugin, plugin_name="w4_pandas_filter"):  # type: ignore[call-arg]
        def __init__(self, plugin_id: str, column: str, above: float) -> None:
            super().__init__(plugin_id)
            self.column, self.above = column, above

        def __call__(self, data: Any) -> Any:
            return data[data[self.column] > self.above]

    class PandasEur(ITransformPlugin, plugin_name="w4_pandas_eur"):  # type: ignore[call-arg]
        def __init__(self, plugin_id: str, rate: float) -> None:
            super().__init__(plugin_id)
            self.rate = rate

        def __call__(self, data: Any) -> Any:
            return data.assign(amount_eur=data["amount"] * self.rate)

    class PandasByCountry(AsyncSQLAlchemyQueryLoader, plugin_name="w4_pandas_by_country"):  # type: ignore[call-arg]
        async def __call__(self, data: Any) -> None:
            totals = data.groupby("country", as_index=False).agg(
                orders=("id", "count"), total_eur=("amount_eur", "sum")
            )
            await super().__call__(totals)


def _pf_run_job(job: dict[str, Any]) -> dict[str, float]:
    """Inside the pipeline-flow environment: run the YAML ``repeat`` times, return the best seconds."""
    import asyncio
    import logging

    import psycopg
    from pipeline_flow.core.orchestrator import PipelineOrchestrator
    from pipeline_flow.core.parsers import YamlParser, parse_pipelines
    from pipeline_flow.core.plugin_loader import load_plugins

    logging.basicConfig(level=logging.WARNING, stream=open(os.devnull, "w"))  # noqa: SIM115
    _pf_define_plugins()
    text = _pf_project(job)
    best = float("inf")
    for _ in range(job["repeat"]):
        with psycopg.connect(job["url"], autocommit=True) as conn:
            conn.execute("TRUNCATE w4_pf_orders, w4_pf_by_country")
        start = time.perf_counter()
        parser = YamlParser(text)
        load_plugins(parser.plugins)
        pipelines = parse_pipelines(parser.pipelines)
        asyncio.run(PipelineOrchestrator(parser.initialize_yaml_config()).execute_pipelines(pipelines))
        best = min(best, time.perf_counter() - start)
    with psycopg.connect(job["url"]) as conn:
        loaded = conn.execute("SELECT count(*) FROM w4_pf_orders").fetchone()
    if not loaded or not loaded[0]:
        raise RuntimeError("pipeline-flow loaded no rows")
    return {"seconds": best, "rows": loaded[0]}


# -- the bench -------------------------------------------------------------------------------------------


def _postgres_unreachable() -> str | None:
    try:
        _pg("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: no baseline to compare with
        return str(exc).strip().splitlines()[0]
    return None


def run(quick: bool = False) -> list[Any]:
    """Measure W4 for Pipedeck, psql \\copy and pipeline-flow + pandas; rows for ``python -m bench``."""
    from bench import BenchRow

    why = _postgres_unreachable()
    if why:
        print(f"W4 skipped: PostgreSQL unreachable at {PG_URL}: {why}", file=sys.stderr)
        return []
    rows = 100_000 if quick else 1_000_000
    repeat = 1 if quick else 3
    csv = orders_csv(rows)
    ours = measure_pipedeck(csv, repeat)
    copy = measure_copy(csv, repeat)
    theirs = measure_pipeline_flow(csv, 1)
    label = f"W4 {rows:,} orders CSV -> filter -> with_columns -> PostgreSQL + aggregate"
    return [
        BenchRow(label, ours, unit="s", ideal=copy, baseline=theirs, target="<= 2x ideal, <= 0.33x pf"),
        BenchRow(
            f"W4 rows/s ({rows:,} CSV rows / s)",
            rows / ours,
            unit="rows/s",
            ideal=rows / copy,
            baseline=rows / theirs if theirs else None,
            target=">= 0.5x ideal, >= 3x pf",
        ),
    ]


def main() -> int:
    """``python -m bench.w4_orders [--quick]``: run W4 and print its table."""
    from bench.__main__ import table

    print(table(run(quick="--quick" in sys.argv)))
    return 0


if __name__ == "__main__":
    if "--pipeline-flow-job" in sys.argv:
        print(json.dumps(_pf_run_job(json.loads(sys.stdin.read()))))
        sys.exit(0)
    sys.exit(main())
