"""A preview's row limit (``StepContext.row_limit``), pushed down to the source by the extract plugins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl

from orchestrator.plugins.files import CsvExtract, JsonExtract, ParquetExtract
from orchestrator.plugins.generate import GenerateRows
from orchestrator.plugins.sql import SqlExtract, limited
from tests.orchestrator.plugins.conftest import make_ctx

BIG = pl.DataFrame({"id": range(50_000), "name": [f"n{i}" for i in range(50_000)]})


async def test_files_read_only_the_first_rows(data_root: Path) -> None:
    BIG.write_csv(data_root / "big.csv")
    BIG.write_parquet(data_root / "big.parquet")
    BIG.write_ndjson(data_root / "big.ndjson")
    ctx = make_ctx(data_root, row_limit=7)
    for plugin in (
        CsvExtract({"path": "big.csv"}),
        ParquetExtract({"path": "big.parquet"}),
        JsonExtract({"path": "big.ndjson", "lines": True}),
    ):
        frame = await plugin.extract(ctx)
        assert isinstance(frame, pl.DataFrame) and frame["id"].to_list() == list(range(7)), plugin.name


async def test_sql_extract_sends_a_limit_to_the_server(data_root: Path) -> None:
    with sqlite3.connect(data_root / "db.sqlite3") as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    conn.close()
    ctx = make_ctx(data_root, row_limit=5)
    by_table = await SqlExtract({"dsn": "sqlite:///db.sqlite3", "table": "t"}).extract(ctx)
    by_query = await SqlExtract(
        {"dsn": "sqlite:///db.sqlite3", "query": "SELECT id FROM t ORDER BY id DESC;"}
    ).extract(ctx)
    assert by_table.height == 5 and by_query["id"].to_list() == [999, 998, 997, 996, 995]
    assert limited("SELECT 1;", 3) == "SELECT * FROM (SELECT 1) AS pipedeck_preview LIMIT 3"
    assert limited("SELECT 1", None) == "SELECT 1"


async def test_generate_rows_makes_no_more_than_the_limit(data_root: Path) -> None:
    frame = await GenerateRows({"rows": 1_000_000, "columns": {"x": "i"}}).extract(
        make_ctx(data_root, row_limit=3)
    )
    assert frame["x"].to_list() == [0, 1, 2]
