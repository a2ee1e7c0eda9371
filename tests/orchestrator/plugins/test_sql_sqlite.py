"""SQL plugins on SQLite (no service needed): extract, load modes, execute, DSNs inside the data root."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading

import polars as pl
import pytest

from orchestrator.plugins import PluginError, sqlload
from orchestrator.plugins.sql import SqlExecute, SqlExtract, SqlLoad
from orchestrator.plugins.sqldb import parse_dsn
from orchestrator.plugins.sqlload import load_frame

DSN = "sqlite:///warehouse.db"
ORDERS = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "amount": [5.5, 20.0, None],
        "country": ["FR", "DE", ""],
        "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
        "paid": [True, False, True],
    }
)


def rows(data_root, sql="SELECT * FROM orders ORDER BY id"):
    with sqlite3.connect(data_root / "warehouse.db") as conn:
        return conn.execute(sql).fetchall()


async def test_load_creates_the_table_and_extract_reads_it_back(ctx, data_root, progress):
    await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS)
    assert rows(data_root) == [
        (1, 5.5, "FR", "2024-01-01", 1),
        (2, 20.0, "DE", "2024-01-02", 0),
        (3, None, "", None, 1),
    ]
    assert progress.calls[-1] == (3, 3)
    frame = await SqlExtract({"dsn": DSN, "table": "orders", "columns": ["id", "country"]}).extract(ctx)
    assert frame.to_dict(as_series=False) == {"id": [1, 2, 3], "country": ["FR", "DE", ""]}
    query = await SqlExtract({"dsn": DSN, "query": "SELECT sum(amount) AS total FROM orders"}).extract(ctx)
    assert query.to_dicts() == [{"total": 25.5}]


async def test_extract_streams_in_batches(ctx, data_root, progress):
    big = pl.DataFrame({"id": range(2500), "v": [f"x{i}" for i in range(2500)]})
    await SqlLoad({"dsn": DSN, "table": "big"}).load(ctx, big)
    progress.calls.clear()
    frame = await SqlExtract({"dsn": DSN, "table": "big", "batch_size": 1000}).extract(ctx)
    assert frame.equals(big)
    assert [rows for rows, _ in progress.calls] == [1000, 2000, 2500, 2500]


async def test_append_replace_and_upsert(ctx, data_root):
    load = SqlLoad({"dsn": DSN, "table": "orders"})
    await load.load(ctx, ORDERS)
    await load.load(ctx, ORDERS.head(1))
    assert len(rows(data_root)) == 4
    await SqlLoad({"dsn": DSN, "table": "orders", "mode": "replace"}).load(ctx, ORDERS.tail(1))
    assert [r[0] for r in rows(data_root)] == [3]
    changes = pl.DataFrame({"id": [3, 4], "amount": [1.0, 2.0], "country": ["IT", "PT"]})
    await SqlLoad({"dsn": DSN, "table": "orders", "mode": "upsert", "key": "id"}).load(ctx, changes)
    assert rows(data_root, "SELECT id, amount, country, paid FROM orders ORDER BY id") == [
        (3, 1.0, "IT", 1),
        (4, 2.0, "PT", None),
    ]


async def test_upsert_needs_a_key_and_unique_keys(ctx):
    with pytest.raises(ValueError, match="mode 'upsert' needs key"):
        SqlLoad({"dsn": DSN, "table": "t", "mode": "upsert"})
    dupes = pl.DataFrame({"id": [1, 1], "v": ["a", "b"]})
    with pytest.raises(PluginError, match=r"upsert key \['id'\] repeats in the data \(e.g. \{'id': 1\}\)"):
        await SqlLoad({"dsn": DSN, "table": "t", "mode": "upsert", "key": "id"}).load(ctx, dupes)
    with pytest.raises(PluginError, match="key column 'ident' not found in the data"):
        await SqlLoad({"dsn": DSN, "table": "t", "mode": "upsert", "key": "ident"}).load(ctx, dupes)


async def test_a_failed_load_leaves_the_table_as_it_was(ctx, data_root):
    await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS)
    before = rows(data_root)
    with sqlite3.connect(data_root / "warehouse.db") as conn:
        conn.execute("CREATE UNIQUE INDEX orders_id ON orders (id)")
    clash = pl.DataFrame({"id": [10, 11, 10]})  # the third row violates the unique index
    for mode in ("append", "replace"):
        with pytest.raises(
            PluginError, match="loading into table 'orders' of sqlite:///warehouse.db failed: UNIQUE"
        ):
            await SqlLoad({"dsn": DSN, "table": "orders", "mode": mode}).load(ctx, clash)
        assert rows(data_root) == before


def test_a_cancelled_load_into_a_new_table_creates_nothing(data_root):
    db = parse_dsn(DSN, data_root)
    cancel = threading.Event()
    cancel.set()  # as when the step awaiting the worker thread is cancelled
    with pytest.raises(PluginError, match="the load was cancelled; the table was left as it was"):
        load_frame(db, "fresh", ORDERS, "append", None, progress=lambda *a: None, cancel=cancel)
    assert rows(data_root, "SELECT name FROM sqlite_master WHERE type = 'table'") == []


async def test_extra_columns_are_refused_with_the_table_columns(ctx, data_root):
    await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS)
    with pytest.raises(PluginError) as err:
        await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS.with_columns(extra=pl.lit(1)))
    assert str(err.value) == (
        "column 'extra' of the data is not in table 'orders' (its columns: id, amount, country, day, paid); "
        "add the column to the table, or drop/rename it before loading"
    )


async def test_missing_table_and_columns_are_named(ctx, data_root):
    await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS)
    with pytest.raises(PluginError) as err:
        await SqlExtract({"dsn": DSN, "table": "ordres"}).extract(ctx)
    assert str(err.value) == "table 'ordres' does not exist in sqlite:///warehouse.db; tables there: orders"
    with pytest.raises(PluginError) as err:
        await SqlExtract({"dsn": DSN, "table": "orders", "columns": ["amout"]}).extract(ctx)
    assert (
        str(err.value)
        == "column 'amout' not found in table 'orders'; its columns: id, amount, country, day, paid"
    )
    with pytest.raises(PluginError, match="^query failed on sqlite:///warehouse.db: no such table: nope$"):
        await SqlExtract({"dsn": DSN, "query": "SELECT * FROM nope"}).extract(ctx)


async def test_dsns_stay_inside_the_data_root(ctx, data_root):
    with pytest.raises(PluginError, match=r"contains '\.\.'"):
        await SqlExtract({"dsn": "sqlite:///../x.db", "table": "t"}).extract(ctx)
    with pytest.raises(PluginError, match="outside the data root"):
        await SqlLoad({"dsn": "sqlite:////tmp/elsewhere.db", "table": "t"}).load(ctx, ORDERS)
    with pytest.raises(
        PluginError, match=r"^SQLite database file .*missing\.db does not exist; check the dsn"
    ):
        await SqlExtract({"dsn": "sqlite:///missing.db", "table": "t"}).extract(ctx)
    assert not (data_root / "missing.db").exists()
    with pytest.raises(PluginError, match=r"^unsupported DSN 'oracle://\.\.\.'; use postgresql://"):
        await SqlExtract({"dsn": "oracle://u@h/db", "table": "t"}).extract(ctx)
    await SqlLoad({"dsn": "sqlite:///sub/dir/w.db", "table": "t"}).load(ctx, ORDERS)
    assert (data_root / "sub/dir/w.db").exists()


def test_extract_args_need_query_or_table():
    for args in ({"dsn": DSN}, {"dsn": DSN, "query": "SELECT 1", "table": "t"}):
        with pytest.raises(ValueError, match="give either query or table"):
            SqlExtract(args)
    with pytest.raises(ValueError, match="columns goes with table"):
        SqlExtract({"dsn": DSN, "query": "SELECT 1", "columns": ["a"]})


async def test_execute_runs_statements_in_one_transaction(ctx, data_root):
    await SqlLoad({"dsn": DSN, "table": "orders"}).load(ctx, ORDERS)
    sql = "CREATE TABLE totals (n INTEGER); INSERT INTO totals SELECT count(*) FROM orders;"
    SqlExecute({"dsn": DSN, "sql": sql}).execute(ctx)
    assert rows(data_root, "SELECT n FROM totals") == [(3,)]
    failing = "DELETE FROM totals; INSERT INTO totals VALUES (1); SELECT * FROM nope"
    with pytest.raises(PluginError) as err:
        SqlExecute({"dsn": DSN, "sql": failing}).execute(ctx)
    assert str(err.value) == (
        "SQL failed on sqlite:///warehouse.db, nothing was changed: "
        "statement 3 of 3 `SELECT * FROM nope`: no such table: nope"
    )
    assert rows(data_root, "SELECT n FROM totals") == [(3,)]


def test_execute_on_a_missing_database_is_an_error(ctx, data_root):
    with pytest.raises(PluginError, match="does not exist"):
        SqlExecute({"dsn": "sqlite:///typo.db", "sql": "SELECT 1"}).execute(ctx)


async def test_lazy_input_streams_in_batches_and_upserts(ctx, data_root, progress, monkeypatch):
    monkeypatch.setattr(sqlload, "BATCH_ROWS", 1000)
    lazy = pl.LazyFrame({"id": range(2500)}).with_columns(v=pl.col("id") * 2)
    await SqlLoad({"dsn": DSN, "table": "t"}).load(ctx, lazy)
    assert [rows for rows, total in progress.calls] == [1000, 2000, 2500]
    assert all(total is None for _, total in progress.calls)  # a lazy frame's length is not known upfront
    changes = pl.LazyFrame({"id": [1, 9999], "v": [-1, -2]})
    await SqlLoad({"dsn": DSN, "table": "t", "mode": "upsert", "key": "id"}).load(ctx, changes)
    assert rows(data_root, "SELECT count(*), sum(v) FROM t") == [(2501, 2500 * 2499 - 2 - 1 - 2)]


async def test_a_lazy_input_failing_midway_leaves_the_table_as_it_was(ctx, data_root, monkeypatch):
    monkeypatch.setattr(sqlload, "BATCH_ROWS", 10)
    await SqlLoad({"dsn": DSN, "table": "t"}).load(ctx, pl.DataFrame({"n": [1, 2]}))
    text = [str(i) for i in range(100)] + ["not a number"]
    failing = pl.LazyFrame({"n": text}).select(pl.col("n").cast(pl.Int64, strict=True))
    for mode in ("append", "replace"):
        with pytest.raises(PluginError, match="^loading into table 't' of sqlite:///warehouse.db failed: "):
            await SqlLoad({"dsn": DSN, "table": "t", "mode": mode}).load(ctx, failing)
        assert rows(data_root, "SELECT n FROM t ORDER BY n") == [(1,), (2,)]


async def test_absolute_sqlite_paths_inside_the_root_are_allowed(ctx, data_root):
    dsn = f"sqlite:///{data_root.resolve()}/abs.db"
    await SqlLoad({"dsn": dsn, "table": "t"}).load(ctx, ORDERS)
    assert (await SqlExtract({"dsn": dsn, "table": "t"}).extract(ctx)).height == 3


async def test_cancelling_the_step_stops_the_load_and_rolls_back(ctx_factory, data_root, monkeypatch):
    await SqlLoad({"dsn": DSN, "table": "t"}).load(ctx_factory(), pl.DataFrame({"n": [1]}))
    monkeypatch.setattr(sqlload, "INSERT_BATCH_ROWS", 100)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    ctx = ctx_factory(on_progress=lambda rows, total: loop.call_soon(started.set))
    task = asyncio.create_task(
        SqlLoad({"dsn": DSN, "table": "t"}).load(ctx, pl.DataFrame({"n": range(300_000)}))
    )
    await asyncio.wait_for(started.wait(), 10)  # rows are being inserted
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the worker thread notices at its next batch and rolls back
        await asyncio.sleep(0.05)
        if not _locked(data_root):
            break
    assert not _locked(data_root)
    assert rows(data_root, "SELECT n FROM t") == [(1,)]


def _locked(data_root) -> bool:
    try:
        with sqlite3.connect(data_root / "warehouse.db", timeout=0) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
