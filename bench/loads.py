"""L1 / L2: the ways a frame can reach a database, measured on W4's transformed orders, in-process.

L1 PostgreSQL: ``sql_load``'s binary COPY (``orchestrator/plugins/pgcopy.py``), its CSV COPY (what it did
    before), and ADBC's PostgreSQL driver (``adbc_ingest``: binary COPY from Arrow, in C++).
L2 MariaDB: ``sql_load``'s LOAD DATA LOCAL (guarded: ``orchestrator/plugins/mysqlload.py``) against its
    batched inserts.
Each side creates its table in its transaction, and each result is checked (rows, sum of ids). Rounds
take turns. The goal of each row: the path ``sql_load`` keeps is the faster one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from bench import BenchRow, against, check, interleaved
from bench.w4_orders import PG_URL, RATE, orders_csv

MARIADB_URL = os.environ.get("PIPEDECK_BENCH_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")


def _frame(rows: int) -> Any:
    import polars as pl

    return (
        pl.read_csv(orders_csv(1_000_000), try_parse_dates=True, n_rows=rows)
        .filter(pl.col("amount") > 10)
        .with_columns(amount_eur=pl.col("amount") * RATE)
    )


def _sql(url: str, statement: str) -> tuple[Any, ...] | None:
    from orchestrator.plugins.sqldb import connect, parse_dsn

    conn = connect(parse_dsn(url, Path.cwd()))
    try:
        cur = conn.cursor()
        cur.execute(statement)
        row = cur.fetchone() if cur.description else None
        conn.commit()
        return tuple(row) if row else None
    finally:
        conn.close()


def sql_load_once(url: str, frame: Any, fast: bool) -> float:
    """Seconds for ``load_frame`` to create ``bench_load`` and fill it, its fast path on or off."""
    from orchestrator.plugins import sqlload
    from orchestrator.plugins.sqldb import parse_dsn

    sqlload.BINARY_COPY = sqlload.MYSQL_LOAD_DATA = fast
    _sql(url, "DROP TABLE IF EXISTS bench_load")
    db = parse_dsn(url, Path.cwd())
    started = time.perf_counter()
    sqlload.load_frame(db, "bench_load", frame, "append", None, progress=_quiet, cancel=threading.Event())
    elapsed = time.perf_counter() - started
    _check(url, frame)
    return elapsed


def adbc_once(frame: Any) -> float:
    """Seconds for ADBC's PostgreSQL driver to create the table and ingest the frame (one transaction)."""
    import adbc_driver_postgresql.dbapi as adbc

    _sql(PG_URL, "DROP TABLE IF EXISTS bench_load")
    started = time.perf_counter()
    with adbc.connect(PG_URL) as conn:
        with conn.cursor() as cur:
            cur.adbc_ingest("bench_load", frame, mode="create")
        conn.commit()
    elapsed = time.perf_counter() - started
    _check(PG_URL, frame)
    return elapsed


def _check(url: str, frame: Any) -> None:
    got = _sql(url, "SELECT count(*), sum(id) FROM bench_load") or (0, 0)
    check("bench_load (rows, sum of ids)", (got[0], int(got[1])), (frame.height, int(frame["id"].sum())))


def _quiet(rows: int, total: int | None = None) -> None:
    pass


def run(quick: bool = False) -> list[BenchRow]:
    """L1 and L2 rows for ``python -m bench``."""
    frame = _frame(100_000 if quick else 1_000_000)
    sides = {
        "binary": lambda: sql_load_once(PG_URL, frame, True),
        "csv": lambda: sql_load_once(PG_URL, frame, False),
    }
    note = ""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401

        sides["adbc"] = lambda: adbc_once(frame)
    except ImportError as exc:
        note = f"ADBC not installed ({exc}): pip install adbc-driver-postgresql"
    sides["binary"]()  # warm up: imports, the first COPY
    figures = interleaved(3 if quick else 5, sides)
    label = f"L1 PostgreSQL load of {frame.height:,} rows: binary COPY"
    rows = [
        against(label, "s", figures["binary"], "CSV COPY", figures["csv"], at_most=1.0),
        against(label, "s", figures["binary"], "ADBC", figures.get("adbc"), at_most=1.0, note=note),
    ]
    small = _frame(50_000 if quick else 300_000)
    figures = interleaved(
        2 if quick else 3,
        {
            "local": lambda: sql_load_once(MARIADB_URL, small, True),
            "inserts": lambda: sql_load_once(MARIADB_URL, small, False),
        },
    )
    rows.append(
        against(
            f"L2 MariaDB load of {small.height:,} rows: LOAD DATA LOCAL",
            "s",
            figures["local"],
            "batched inserts",
            figures["inserts"],
            at_most=1.0,
        )
    )
    for url in (PG_URL, MARIADB_URL):
        _sql(url, "DROP TABLE IF EXISTS bench_load")
    return rows
