"""W4: a 1,000,000-row orders CSV -> filter_rows amount > 10 -> with_columns amount_eur -> PostgreSQL.

Pipedeck runs the YAML below as a user would: ``python -m orchestrator run w4.yaml`` (a whole process,
start-up included), and once more in-process through the CLI's own ``main`` (start-up excluded). Beside
them, in the same interleaved rounds:
- ``psql \\copy`` of the same CSV into a fresh table: the floor (the server parses text; nothing else);
- pipeline-flow 1.0.8 running the same logic written with pandas and loaded with psycopg's COPY, the
  fastest way its user would write it, in ``.bench-venvs/pipeline-flow``: whole process, and in-process;
- once: pipeline-flow's own row-by-row ``sqlalchemy_query_loader``, as a second line.
Every side creates its table in its load's transaction, with the same column types, and every result is
checked (rows, and sums of id and amount_eur, the first and last ts) before its time counts.
Goals: CLI within 1.5x ``\\copy`` and at least 3x faster than pipeline-flow + pandas + COPY; in-process
within 1.2x ``\\copy``.

``python -m bench w4_orders [--quick]`` (quick: 100,000 rows). Module-level imports are stdlib only: the
pipeline-flow side of this file runs inside that environment (``bench/w4_orders.py --pipeline-flow-job``).
"""

from __future__ import annotations

import contextlib
import io
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
#: what a loaded table must hold (ts as text: it compares alike on both sides)
CHECKSUM = (
    "SELECT count(*), sum(id), round(sum(amount_eur)::numeric, 2), min(ts)::text, max(ts)::text FROM {}"
)


def orders_csv(rows: int) -> Path:
    """The generated orders CSV (made once with generate_rows + csv_load, then reused)."""
    import asyncio
    import logging

    from orchestrator.plugins import StepContext
    from orchestrator.plugins.files import CsvLoad
    from orchestrator.plugins.generate import GenerateRows

    path = DATA / f"orders_{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    ctx = StepContext("w4", "bench", "step", "bench", logging.getLogger("bench.w4"), data_root=DATA)

    async def make() -> None:
        frame = await GenerateRows({"rows": rows, "columns": COLUMNS, "seed": 4}).extract(ctx)
        await CsvLoad({"path": path.name}).load(ctx, frame)

    asyncio.run(make())
    return path


def project_yaml(csv: Path, table: str) -> str:
    """The W4 pipeline as a user writes it."""
    return f"""\
pipelines:
  w4_orders:
    type: ETL
    phases:
      extract:
        steps:
          - {{id: orders, plugin: csv_extract, args: {{path: {csv.name}, parse_dates: true}}}}
      transform:
        steps:
          - {{id: big_only, plugin: filter_rows, args: {{expr: amount > 10}}}}
          - {{id: eur, plugin: with_columns, args: {{columns: {{amount_eur: amount * {RATE}}}}}}}
      load:
        steps:
          - {{id: rows, plugin: sql_load, args: {{dsn: "{PG_URL}", table: {table}}}}}
"""


def _pg(sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def expected(csv: Path) -> tuple[Any, ...]:
    """The checksum row the loaded table must match, computed from the CSV by Polars."""
    from decimal import Decimal

    import polars as pl

    frame = (
        pl.scan_csv(csv, try_parse_dates=True)
        .filter(pl.col("amount") > 10)
        .with_columns(amount_eur=pl.col("amount") * RATE)
        .collect()
    )
    return (
        frame.height,
        Decimal(int(frame["id"].sum())),
        round(Decimal(repr(frame["amount_eur"].sum())), 2),
        str(frame["ts"].min()),
        str(frame["ts"].max()),
    )


def _check_table(table: str, want: tuple[Any, ...]) -> None:
    """Raise WrongResult unless ``table`` holds the expected rows (a float sum may differ in its last
    cents with the order of additions; counts, ids and times may not)."""
    from bench import WrongResult

    got = _pg(CHECKSUM.format(table))[0]
    if got[:2] != want[:2] or abs(got[2] - want[2]) > 1 or got[3:] != want[3:]:
        raise WrongResult(
            f"table {table} (rows, sum(id), sum(amount_eur), min(ts), max(ts)): {got} != {want}"
        )


# -- Pipedeck --------------------------------------------------------------------------------------------


def cli_once(yaml_path: Path, want: tuple[Any, ...]) -> float:
    """Seconds for ``python -m orchestrator run`` (a whole process), into a fresh table."""
    _pg("DROP TABLE IF EXISTS w4_orders")
    env = {**os.environ, "PIPEDECK_DATA_ROOT": str(DATA)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(yaml_path)], capture_output=True, text=True, env=env
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"W4 CLI run failed: {done.stdout[-800:]} {done.stderr[-800:]}")
    _check_table("w4_orders", want)
    return elapsed


def in_process_once(yaml_path: Path, want: tuple[Any, ...]) -> float:
    """Seconds for the CLI's ``main`` in this process (imports done), into a fresh table."""
    from orchestrator.cli import main

    _pg("DROP TABLE IF EXISTS w4_orders")
    os.environ["PIPEDECK_DATA_ROOT"] = str(DATA)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["run", str(yaml_path)])
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"W4 in-process run failed: {out.getvalue()[-800:]}")
    _check_table("w4_orders", want)
    return elapsed


# -- psql \copy, the floor -------------------------------------------------------------------------------


def copy_once(csv: Path, rows: int) -> float:
    """Seconds for psql to create a table and \\copy the CSV into it (one transaction)."""
    from bench import check

    script = (
        "BEGIN;\nDROP TABLE IF EXISTS w4_copy;\n"
        f"CREATE TABLE w4_copy ({ORDERS_DDL});\n"
        f"\\copy w4_copy FROM '{csv}' WITH (FORMAT csv, HEADER true)\nCOMMIT;\n"
    )
    started = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", PG_URL], input=script, text=True, check=True)
    elapsed = time.perf_counter() - started
    check("table w4_copy rows", _pg("SELECT count(*) FROM w4_copy")[0][0], rows)
    return elapsed


# -- pipeline-flow 1.0.8 + pandas ------------------------------------------------------------------------


def pf_python() -> Path:
    """pipeline-flow's Python (its venv created on first use, pandas and psycopg added)."""
    from bench.pipeline_flow_env import BaselineUnavailable, ensure_venv

    python = ensure_venv()
    probe = [str(python), "-c", "import pandas, psycopg, pipeline_flow"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PF_PACKAGES], capture_output=True, text=True
        )
        if install.returncode != 0:
            raise BaselineUnavailable(f"could not install {', '.join(PF_PACKAGES)}: {install.stderr[-300:]}")
    return python


def pf_once(python: Path, csv: Path, loader: str, want: tuple[Any, ...]) -> tuple[float, float]:
    """(whole process, in-process) seconds of pipeline-flow running W4 with ``loader`` ("copy" or
    "rows"), into a fresh table."""
    table = f"w4_pf_{loader}"
    _pg(f"DROP TABLE IF EXISTS {table}")
    if loader == "rows":  # its query loader inserts into an existing table
        _pg(f"CREATE TABLE {table} ({ORDERS_DDL}, amount_eur DOUBLE PRECISION)")
    job = json.dumps({"csv": str(csv), "url": PG_URL, "rate": RATE, "loader": loader, "table": table})
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), __file__, "--pipeline-flow-job"],
        input=job,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pipeline-flow W4 failed: {done.stderr[-800:]}")
    _check_table(table, want)
    return elapsed, float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


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
    columns = "id, customer_id, amount, country, ts, amount_eur"
    if job["loader"] == "rows":
        query = f"INSERT INTO {job['table']} ({columns}) VALUES (:{columns.replace(', ', ', :')})"
        load = {"id": "rows", "plugin": "sqlalchemy_query_loader", "args": {**db, "query": query}}
    else:
        load = {"id": "rows", "plugin": "w4_pandas_copy", "args": {"url": job["url"], "table": job["table"]}}
    transform = [
        {"id": "big_only", "plugin": "w4_pandas_filter", "args": {"column": "amount", "above": 10}},
        {"id": "eur", "plugin": "w4_pandas_eur", "args": {"rate": job["rate"]}},
    ]
    pipeline = {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "orders", "plugin": "w4_pandas_csv", "args": {"path": job["csv"]}}]},
            "transform": {"steps": transform},
            "load": {"steps": [load]},
        },
    }
    return json.dumps({"pipelines": {"w4_orders": pipeline}})


def _pf_define_plugins() -> None:
    """The pandas plugins, written against pipeline-flow's API (runs inside its environment)."""
    import asyncio

    import pandas as pd
    import pipeline_flow.plugins.load.sqlalchemy_query_async  # noqa: F401 - registers its row loader
    import psycopg
    from pipeline_flow.plugins import IExtractPlugin, ILoadPlugin, ITransformPlugin

    class PandasCsv(IExtractPlugin, plugin_name="w4_pandas_csv"):  # type: ignore[call-arg]
        def __init__(self, plugin_id: str, path: str) -> None:
            super().__init__(plugin_id)
            self.path = path

        async def __call__(self) -> Any:
            return await asyncio.to_thread(pd.read_csv, self.path, parse_dates=["ts"])

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

    class PandasCopy(ILoadPlugin, plugin_name="w4_pandas_copy"):  # type: ignore[call-arg]
        """pandas -> CSV text in memory -> psycopg COPY, in one transaction that creates the table."""

        def __init__(self, plugin_id: str, url: str, table: str) -> None:
            super().__init__(plugin_id)
            self.url, self.table = url, table

        async def __call__(self, data: Any) -> None:
            await asyncio.to_thread(self._copy, data)

        def _copy(self, data: Any) -> None:
            with psycopg.connect(self.url) as conn:
                conn.execute(f"CREATE TABLE {self.table} ({ORDERS_DDL}, amount_eur DOUBLE PRECISION)")
                columns = ", ".join(data.columns)
                with conn.cursor().copy(f"COPY {self.table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    for start in range(0, len(data), 100_000):
                        copy.write(data.iloc[start : start + 100_000].to_csv(index=False, header=False))


def _pf_run_job(job: dict[str, Any]) -> dict[str, float]:
    """Inside the pipeline-flow environment: run the YAML once, as its entry point does; the seconds."""
    import asyncio
    import logging

    started = time.perf_counter()
    from pipeline_flow.core.orchestrator import PipelineOrchestrator
    from pipeline_flow.core.parsers import YamlParser, parse_pipelines
    from pipeline_flow.core.plugin_loader import load_plugins

    logging.basicConfig(level=logging.WARNING, stream=open(os.devnull, "w"))  # noqa: SIM115
    _pf_define_plugins()
    imported = time.perf_counter()
    parser = YamlParser(_pf_project(job))
    load_plugins(parser.plugins)
    pipelines = parse_pipelines(parser.pipelines)
    asyncio.run(PipelineOrchestrator(parser.initialize_yaml_config()).execute_pipelines(pipelines))
    return {"seconds": time.perf_counter() - imported, "imports": imported - started}


# -- the bench -------------------------------------------------------------------------------------------


def run(quick: bool = False) -> list[Any]:
    """W4 rows for ``python -m bench``: Pipedeck (CLI, in-process), \\copy, pipeline-flow, interleaved."""
    from bench import against, interleaved, shown
    from bench.pipeline_flow_env import BaselineUnavailable

    rows = 100_000 if quick else 1_000_000
    csv = orders_csv(rows)
    want = expected(csv)
    yaml_path = DATA / "w4.yaml"
    yaml_path.write_text(project_yaml(csv, "w4_orders"))
    in_process_once(yaml_path, want)  # warm-up: imports, the first COPY
    sides = {
        "cli": lambda: cli_once(yaml_path, want),
        "in_process": lambda: in_process_once(yaml_path, want),
        "copy": lambda: copy_once(csv, rows),
    }
    pf_whole: list[float] = []
    pf_inside: list[float] = []
    note = ""
    try:
        python = pf_python()

        def pf_copy() -> float:
            whole, inside = pf_once(python, csv, "copy", want)
            pf_whole.append(whole)
            pf_inside.append(inside)
            return whole

        sides["pf"] = pf_copy
    except (BaselineUnavailable, OSError) as exc:
        note = f"pipeline-flow unavailable: {exc}"
    figures = interleaved(3 if quick else 5, sides)
    label = f"W4 {rows:,}-row CSV -> filter -> derive -> PostgreSQL"
    result = [
        against(f"{label}, CLI", "s", figures["cli"], "psql \\copy", figures["copy"], at_most=1.5),
        against(
            f"{label}, CLI",
            "s",
            figures["cli"],
            "pipeline-flow+pandas+COPY",
            pf_whole,
            at_most=1 / 3,
            note=note,
        ),
        against(
            f"{label}, in-process", "s", figures["in_process"], "psql \\copy", figures["copy"], at_most=1.2
        ),
    ]
    if pf_inside:
        result.append(shown(f"{label}, pipeline-flow+pandas+COPY in-process", "s", pf_inside))
    if not note:
        whole, inside = pf_once(python, csv, "rows", want)
        result.append(
            shown(
                f"{label}, pipeline-flow row-by-row loader (1 round)",
                "s",
                [whole],
                note=f"in-process {inside:.2f} s: its sqlalchemy_query_loader, the peer's own",
            )
        )
    _pg("DROP TABLE IF EXISTS w4_orders; DROP TABLE IF EXISTS w4_copy; DROP TABLE IF EXISTS w4_pf_copy;")
    _pg("DROP TABLE IF EXISTS w4_pf_rows")
    return result


if __name__ == "__main__":
    if "--pipeline-flow-job" in sys.argv:
        print(json.dumps(_pf_run_job(json.loads(sys.stdin.read()))))
        sys.exit(0)
    from bench.__main__ import main

    sys.exit(main(["w4_orders", *sys.argv[1:]]))
