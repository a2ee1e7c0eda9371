"""SQL plugins against the real PostgreSQL and MariaDB: round trips, load modes, atomic failures, errors."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import polars as pl
import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.sql import SqlExecute, SqlExtract, SqlLoad
from orchestrator.plugins.sqldb import connect, parse_dsn
from orchestrator.plugins.sqlload import load_frame
from tests.orchestrator.plugins.conftest import Progress, make_ctx

pytestmark = pytest.mark.integration

ORDERS = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "amount": [5.5, 20.0, None],
        "country": ['F,R "x"', "", None],
        "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
        "ts": [dt.datetime(2024, 1, 1, 10, 30, 0, 123456), None, dt.datetime(2024, 3, 1)],
        "paid": [True, False, None],
        "price": pl.Series([Decimal("1.10"), Decimal("2.25"), None], dtype=pl.Decimal(10, 2)),
    }
)


@pytest.fixture(params=["postgresql", "mariadb"])
def dsn(request):
    return request.getfixturevalue("postgres_dsn" if request.param == "postgresql" else "mariadb_dsn")


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path, on_progress=Progress())


def query(dsn, tmp_path, sql):
    conn = connect(parse_dsn(dsn, tmp_path))
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.rollback()
        conn.close()


async def read(ctx, dsn, table="orders"):
    frame = await SqlExtract({"dsn": dsn, "query": f"SELECT * FROM {table} ORDER BY id"}).extract(ctx)
    return frame


async def test_round_trip_keeps_values_and_types(ctx, dsn):
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS)
    back = await read(ctx, dsn)
    assert back["id"].to_list() == [1, 2, 3]
    assert back["amount"].to_list() == [5.5, 20.0, None]
    assert back["country"].to_list() == ['F,R "x"', "", None]
    assert back["day"].to_list() == ORDERS["day"].to_list()
    assert back["ts"].to_list() == ORDERS["ts"].to_list()
    assert [None if v is None else bool(v) for v in back["paid"].to_list()] == [True, False, None]
    assert back["price"].to_list() == [Decimal("1.10"), Decimal("2.25"), None]
    assert ctx.on_progress.calls[-1] == (3, 3)


async def test_lazy_input_and_streamed_extract(ctx, dsn):
    big = pl.LazyFrame({"id": range(3000)}).with_columns(v=pl.col("id").cast(pl.String))
    await SqlLoad({"dsn": dsn, "table": "big"}).load(ctx, big)
    ctx.on_progress.calls.clear()
    frame = await SqlExtract({"dsn": dsn, "table": "big", "columns": ["id"], "batch_size": 1000}).extract(ctx)
    assert sorted(frame["id"].to_list()) == list(range(3000))
    assert [rows for rows, _ in ctx.on_progress.calls] == [1000, 2000, 3000, 3000]


async def test_append_replace_upsert(ctx, dsn, tmp_path):
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS)
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS.head(1))
    assert query(dsn, tmp_path, "SELECT count(*) FROM orders") == [(4,)]
    await SqlLoad({"dsn": dsn, "table": "orders", "mode": "replace"}).load(ctx, ORDERS.tail(2))
    assert query(dsn, tmp_path, "SELECT id FROM orders ORDER BY id") == [(2,), (3,)]
    changes = pl.DataFrame({"id": [3, 4], "country": ["IT", "PT"]})
    await SqlLoad({"dsn": dsn, "table": "orders", "mode": "upsert", "key": ["id"]}).load(ctx, changes)
    assert query(dsn, tmp_path, "SELECT id, country, amount FROM orders ORDER BY id") == [
        (2, "", 20.0),
        (3, "IT", None),
        (4, "PT", None),
    ]


async def test_upsert_into_a_new_table_makes_the_key_primary(ctx, dsn, tmp_path):
    frame = pl.DataFrame({"code": ["a", "b"], "n": [1, 2]})
    load = SqlLoad({"dsn": dsn, "table": "codes", "mode": "upsert", "key": "code"})
    await load.load(ctx, frame)
    await load.load(ctx, pl.DataFrame({"code": ["b", "c"], "n": [20, 30]}))
    assert query(dsn, tmp_path, "SELECT code, n FROM codes ORDER BY code") == [("a", 1), ("b", 20), ("c", 30)]


async def test_a_failed_load_leaves_the_table_as_it_was(ctx, dsn, tmp_path):
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS)
    conn = connect(parse_dsn(dsn, tmp_path))
    conn.cursor().execute("CREATE UNIQUE INDEX orders_id ON orders (id)")
    conn.commit()
    conn.close()
    before = query(dsn, tmp_path, "SELECT id, country FROM orders ORDER BY id")
    clash = pl.DataFrame({"id": [10, 11, 10]})
    for mode in ("append", "replace"):
        with pytest.raises(
            PluginError, match="^loading into table 'orders' of .* failed: .*(duplicate|Duplicate)"
        ):
            await SqlLoad({"dsn": dsn, "table": "orders", "mode": mode}).load(ctx, clash)
        assert query(dsn, tmp_path, "SELECT id, country FROM orders ORDER BY id") == before


async def test_a_cancelled_load_into_a_new_table_leaves_no_table(dsn, tmp_path):
    db = parse_dsn(dsn, tmp_path)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PluginError, match="the load was cancelled"):
        load_frame(db, "fresh", ORDERS, "append", None, progress=lambda *a: None, cancel=cancel)
    with pytest.raises(PluginError, match="^table 'fresh' does not exist in"):
        await SqlExtract({"dsn": dsn, "table": "fresh"}).extract(make_ctx(tmp_path))


async def test_missing_table_and_extra_columns_are_named(ctx, dsn):
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS.select("id"))
    with pytest.raises(PluginError, match=r"^table 'ordres' does not exist in \S+; tables there: orders$"):
        await SqlExtract({"dsn": dsn, "table": "ordres"}).extract(ctx)
    with pytest.raises(PluginError, match="^query failed on .*(ordres|doesn't exist)"):
        await SqlExtract({"dsn": dsn, "query": "SELECT * FROM ordres"}).extract(ctx)
    with pytest.raises(
        PluginError, match="^column 'amount' of the data is not in table 'orders' \\(its columns: id\\)"
    ):
        await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS.select("id", "amount"))


@pytest.mark.parametrize(
    ("make_dsn", "label"),
    [
        (lambda url: url.replace(":5432", ":1").replace(":3306", ":1"), "at"),
        (lambda url: url.rsplit("/", 1)[0] + "/pipedeck_no_such_db", "at"),
    ],
)
async def test_wrong_dsn_says_what_to_check(ctx, dsn, make_dsn, label):
    bad = make_dsn(dsn.split("?")[0])
    with pytest.raises(
        PluginError, match=r"^cannot connect to (PostgreSQL|MariaDB/MySQL) at .*check the dsn"
    ):
        await SqlExtract({"dsn": bad, "query": "SELECT 1"}).extract(ctx)
    assert "password" not in bad or ":" not in bad.split("@")[0].split("//")[1]


async def test_execute_is_one_transaction(ctx, dsn, tmp_path):
    await SqlLoad({"dsn": dsn, "table": "orders"}).load(ctx, ORDERS.select("id"))
    SqlExecute(
        {"dsn": dsn, "sql": "UPDATE orders SET id = id + 10; DELETE FROM orders WHERE id = 11"}
    ).execute(ctx)
    assert query(dsn, tmp_path, "SELECT id FROM orders ORDER BY id") == [(12,), (13,)]
    with pytest.raises(PluginError, match="^SQL failed on .*, nothing was changed: "):
        SqlExecute({"dsn": dsn, "sql": "DELETE FROM orders; SELECT * FROM nope"}).execute(ctx)
    assert query(dsn, tmp_path, "SELECT id FROM orders ORDER BY id") == [(12,), (13,)]


async def test_postgres_schema_qualified_table(ctx, postgres_dsn, tmp_path):
    SqlExecute({"dsn": postgres_dsn, "sql": "CREATE SCHEMA IF NOT EXISTS pipedeck_mart"}).execute(ctx)
    try:
        await SqlLoad({"dsn": postgres_dsn, "table": "pipedeck_mart.totals"}).load(ctx, ORDERS.select("id"))
        frame = await SqlExtract({"dsn": postgres_dsn, "table": "pipedeck_mart.totals"}).extract(ctx)
        assert frame["id"].to_list() == [1, 2, 3]
    finally:
        SqlExecute({"dsn": postgres_dsn, "sql": "DROP SCHEMA pipedeck_mart CASCADE"}).execute(ctx)


async def test_less_common_types_load_everywhere(ctx, dsn):
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "at": pl.Series([dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC), None]).dt.convert_time_zone(
                "Europe/Paris"
            ),
            "wait": [dt.timedelta(seconds=90), None],
            "blob": [b"\x00\x01", None],
            "kind": pl.Series(["a", "b"], dtype=pl.Categorical),
            "small": pl.Series([1, -1], dtype=pl.Int8),
        }
    )
    await SqlLoad({"dsn": dsn, "table": "odd"}).load(ctx, frame)
    back = await SqlExtract({"dsn": dsn, "query": "SELECT * FROM odd ORDER BY id"}).extract(ctx)
    first = back.row(0, named=True)
    assert first["at"].replace(tzinfo=None) == dt.datetime(2024, 1, 1, 12)  # stored as UTC
    assert first["wait"] in (dt.timedelta(seconds=90), 90_000_000)  # INTERVAL, or microseconds
    assert (first["blob"], first["kind"], first["small"]) == (b"\x00\x01", "a", 1)
    assert back.row(1) == (2, None, None, None, "b", -1)


# -- the fast paths: binary COPY (PostgreSQL), LOAD DATA LOCAL (MariaDB) -------------------------------

NASTY = ['F,R "x"', "", None, "ünïcode ✓", "line\nbreak", "back\\slash", "NULL", "\\N", "tab\there"]


def _typed_frame(rows: int = 9) -> pl.DataFrame:
    base = pl.DataFrame({"id": range(rows)})
    return base.with_columns(
        small=pl.Series([1, -2, None, 32767, -32768, 0, 5, 6, 7], dtype=pl.Int16).head(rows),
        mid=pl.Series([1, None, -(2**31), 2**31 - 1, 0, 1, 2, 3, 4], dtype=pl.Int32).head(rows),
        big=pl.Series([2**62, -(2**62), None, 0, 1, 2, 3, 4, 5], dtype=pl.Int64).head(rows),
        unsigned=pl.Series([0, 4_000_000_000, None, 1, 2, 3, 4, 5, 6], dtype=pl.UInt32).head(rows),
        ratio=pl.Series([0.1, -1e300, None, 1e-300, 2.5, float("inf"), 0.0, -0.0, 3.0]).head(rows),
        single=pl.Series([0.5, None, 1.25, -2.0, 3.5, 1e30, 0.0, 7.0, 8.0], dtype=pl.Float32).head(rows),
        flag=pl.Series([True, False, None, True, False, True, None, False, True]).head(rows),
        text=pl.Series(NASTY).head(rows),
        kind=pl.Series(["a", "b", None, "a", "b", "a", "b", "a", "b"], dtype=pl.Categorical).head(rows),
        day=pl.Series(
            [dt.date(1999, 12, 31), dt.date(2000, 1, 1), None, dt.date(1970, 1, 1), dt.date(2024, 2, 29)] * 2
        ).head(rows),
        at=pl.Series(
            [dt.datetime(1999, 12, 31, 23, 59, 59, 999999), None, dt.datetime(2024, 1, 1, 12, 0, 0, 1)] * 3
        ).head(rows),
        at_ms=pl.Series([dt.datetime(2001, 2, 3, 4, 5, 6, 7000)] * rows).dt.cast_time_unit("ms"),
        at_zone=pl.Series([dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC), None, None] * 3)
        .head(rows)
        .dt.convert_time_zone("Europe/Paris"),
    )


def _spy(monkeypatch, owner, name):
    calls = []
    real = getattr(owner, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


async def test_binary_copy_round_trips_every_type_it_encodes(ctx, postgres_dsn, monkeypatch):
    from orchestrator.plugins.pgcopy import BinaryCopy

    encoded = _spy(monkeypatch, BinaryCopy, "encode")
    frame = _typed_frame()
    await SqlLoad({"dsn": postgres_dsn, "table": "typed"}).load(ctx, frame)
    assert encoded, "the load did not use binary COPY"
    back = await SqlExtract({"dsn": postgres_dsn, "query": "SELECT * FROM typed ORDER BY id"}).extract(ctx)
    expected = frame.with_columns(
        pl.col("kind").cast(pl.String), pl.col("at_ms").dt.cast_time_unit("us"), pl.col("at_zone")
    )
    for name in frame.columns:
        got, want = back[name].to_list(), expected[name].to_list()
        if name == "single":  # REAL comes back as the float its text spells
            got = back[name].cast(pl.Float32).to_list()
        if name == "at_zone":
            got = [v and v.astimezone(dt.UTC) for v in got]
            want = [v and v.astimezone(dt.UTC) for v in want]
        assert got == want, name


async def test_binary_and_csv_copy_store_the_same_rows(ctx, postgres_dsn, tmp_path, monkeypatch):
    from orchestrator.plugins import sqlload

    frame = _typed_frame()
    await SqlLoad({"dsn": postgres_dsn, "table": "by_binary"}).load(ctx, frame)
    monkeypatch.setattr(sqlload, "BINARY_COPY", False)
    await SqlLoad({"dsn": postgres_dsn, "table": "by_csv"}).load(ctx, frame)
    differ = (
        "SELECT count(*) FROM ((TABLE by_binary EXCEPT TABLE by_csv) "
        "UNION (TABLE by_csv EXCEPT TABLE by_binary)) d"
    )
    assert query(postgres_dsn, tmp_path, differ) == [(0,)]
    assert query(postgres_dsn, tmp_path, "SELECT count(*) FROM by_csv") == [(9,)]


async def test_a_column_binary_cannot_carry_sends_the_load_as_csv(ctx, postgres_dsn, monkeypatch):
    from orchestrator.plugins.pgcopy import BinaryCopy

    encoded = _spy(monkeypatch, BinaryCopy, "encode")
    await SqlLoad({"dsn": postgres_dsn, "table": "orders"}).load(ctx, ORDERS)  # a Decimal column
    assert not encoded
    back = await read(ctx, postgres_dsn)
    assert back["price"].to_list() == [Decimal("1.10"), Decimal("2.25"), None]


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
async def test_a_failure_mid_stream_leaves_the_table_as_it_was(ctx, dsn, tmp_path, monkeypatch, mode):
    from orchestrator.plugins import sqlload

    monkeypatch.setattr(sqlload, "BATCH_ROWS", 10)  # many batches: the bad row is in the ninth
    conn = connect(parse_dsn(dsn, tmp_path))
    conn.cursor().execute("CREATE TABLE checked (id BIGINT PRIMARY KEY, v BIGINT NOT NULL CHECK (v >= 0))")
    conn.cursor().execute("INSERT INTO checked VALUES (1000, 1), (1001, 2)")
    conn.commit()
    conn.close()
    before = query(dsn, tmp_path, "SELECT id, v FROM checked ORDER BY id")
    rows = pl.DataFrame({"id": range(100), "v": [*range(85), -1, *range(14)]})
    key = {"key": "id"} if mode == "upsert" else {}
    load = SqlLoad({"dsn": dsn, "table": "checked", "mode": mode, **key})
    with pytest.raises(PluginError, match="^loading into table 'checked' of .* failed: "):
        await load.load(ctx, rows)
    assert query(dsn, tmp_path, "SELECT id, v FROM checked ORDER BY id") == before
    await load.load(ctx, rows.with_columns(v=pl.col("id")))  # the same load, valid, goes through
    assert query(dsn, tmp_path, "SELECT count(*) FROM checked")[0][0] == (102 if mode != "replace" else 100)


async def test_mariadb_load_data_and_inserts_store_the_same_rows(ctx, mariadb_dsn, tmp_path, monkeypatch):
    from orchestrator.plugins import mysqlload, sqlload

    sent = _spy(monkeypatch, mysqlload, "load_batch")
    frame = _typed_frame().with_columns(  # MariaDB stores no infinity, whichever way it is sent
        ratio=pl.when(pl.col("ratio").is_infinite()).then(4.0).otherwise(pl.col("ratio"))
    )
    await SqlLoad({"dsn": mariadb_dsn, "table": "by_load"}).load(ctx, frame)
    assert sent, "the load did not use LOAD DATA LOCAL"
    monkeypatch.setattr(sqlload, "MYSQL_LOAD_DATA", False)
    await SqlLoad({"dsn": mariadb_dsn, "table": "by_insert"}).load(ctx, frame)
    assert len(sent) == 1
    loaded = query(mariadb_dsn, tmp_path, "SELECT * FROM by_load ORDER BY id")
    assert loaded == query(mariadb_dsn, tmp_path, "SELECT * FROM by_insert ORDER BY id")
    assert [row[8] for row in loaded] == NASTY  # text, the same as sent (NULL, "NULL", \N, quotes...)


async def test_mariadb_load_data_fails_on_a_value_an_insert_refuses(ctx, mariadb_dsn, tmp_path):
    conn = connect(parse_dsn(mariadb_dsn, tmp_path))
    conn.cursor().execute("CREATE TABLE narrow (id INT, code VARCHAR(3))")
    conn.commit()
    conn.close()
    with pytest.raises(
        PluginError, match="^loading into table 'narrow' of .* failed: Data (too long|truncated)"
    ):
        await SqlLoad({"dsn": mariadb_dsn, "table": "narrow"}).load(
            ctx, pl.DataFrame({"id": [1, 2], "code": ["abc", "abcdef"]})
        )
    assert query(mariadb_dsn, tmp_path, "SELECT count(*) FROM narrow") == [(0,)]


def test_a_server_asking_for_a_file_of_its_choosing_gets_nothing(mariadb_dsn, tmp_path):
    """With LOCAL, the server names the file; ours answers only the name a load offers, from memory."""
    from orchestrator.plugins.mysqlload import LocalFileRefused

    secret = tmp_path / "secret.txt"
    secret.write_text("1,top secret\n")
    conn = connect(parse_dsn(mariadb_dsn, tmp_path), load_data=True)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE leak (id INT, body TEXT)")
        steal = f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE leak FIELDS TERMINATED BY ','"
        with pytest.raises(LocalFileRefused, match="asked for the local file"):
            cur.execute(steal)  # what a hostile server's answer to any statement amounts to
        with conn.offer(b"2,offered\n"), pytest.raises(LocalFileRefused):
            cur.execute(steal)  # a load is offering its own data: still not that file
        cur.execute("SELECT count(*) FROM leak")
        assert cur.fetchone() == (0,)
    finally:
        conn.rollback()
        conn.close()
