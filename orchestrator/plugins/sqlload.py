"""Load a frame into a table in one transaction: COPY on PostgreSQL, batched inserts elsewhere."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.plugins.base import PluginError
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.pgcopy import SIGNATURE, TRAILER, BinaryCopy
from orchestrator.plugins.sqldb import (
    Cancelled,
    Database,
    begin,
    connect,
    create_table_sql,
    driver_errors,
    first_line,
    placeholder,
    quote_ident,
    quote_table,
    rollback,
    table_columns,
)

if TYPE_CHECKING:
    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    pl = LazyModule("polars")

Progress = Callable[[int, int | None], None]
BATCH_ROWS = 50_000
INSERT_BATCH_ROWS = 5_000
#: PostgreSQL: COPY in binary where the columns allow it (False: always CSV; the bench compares both)
BINARY_COPY = True
#: MariaDB/MySQL: LOAD DATA LOCAL where the server allows it (False: batched inserts; the bench compares)
MYSQL_LOAD_DATA = True


def chunks(data: Frame, size: int) -> Iterator[pl.DataFrame]:
    """Slices of an eager frame, or batches computed from a lazy one (never all of it in memory). A lazy
    frame starts computing at once, ahead of the caller by a bounded buffer; dropping the iterator stops
    it."""
    if isinstance(data, pl.DataFrame):
        return data.iter_slices(size)
    return iter(data.collect_batches(chunk_size=size))


def load_frame(
    db: Database,
    table: str,
    data: Frame,
    mode: str,
    key: list[str] | None,
    *,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """Append, replace or upsert ``data`` into ``table``; on any failure the table is left as it was.

    A lazy frame streams: its batches are computed while the previous ones are sent. Returns the rows sent.
    """
    # A lazy frame starts computing its batches now, so reading the input overlaps connecting (and
    # importing the driver); an upsert reads its input twice (keys, then rows) and starts later.
    batches = chunks(data, BATCH_ROWS) if mode != "upsert" else None
    try:
        return _load(db, table, data, mode, key, batches, progress, cancel)
    finally:
        batches = None  # a lazy frame's computation stops once its batches are dropped


def _load(
    db: Database,
    table: str,
    data: Frame,
    mode: str,
    key: list[str] | None,
    batches: Iterator[pl.DataFrame] | None,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    schema = data.collect_schema()
    if mode == "upsert":
        _check_keys(data, key or [])
    conn = connect(db, create=True, load_data=MYSQL_LOAD_DATA)
    created = False
    try:
        begin(db, conn)
        existing = table_columns(db, conn, table)
        if existing is None:
            conn.cursor().execute(create_table_sql(db, table, schema, key if mode == "upsert" else None))
            created = True
        else:
            _check_columns(table, schema.names(), existing)
        target = quote_table(db, table)
        if mode == "upsert" and not created:
            rows = _upsert(db, conn, target, data, key or [], progress, cancel)
        else:
            if mode == "replace" and not created:
                conn.cursor().execute(f"DELETE FROM {target}")
            rows = insert_rows(db, conn, target, data, progress, cancel, batches)
        conn.commit()
        return rows
    except BaseException as exc:
        rollback(conn)
        if created and db.dialect == "mysql":  # MariaDB commits DDL at once: undo the table we made
            _drop_quietly(db, conn, table)
        if isinstance(exc, Cancelled):
            raise PluginError("the load was cancelled; the table was left as it was") from None
        if isinstance(exc, PluginError) or not isinstance(exc, Exception):
            raise
        detail = (
            first_line(exc)
            if isinstance(exc, driver_errors())
            else f"{type(exc).__name__}: {first_line(exc)}"
        )
        raise PluginError(f"loading into table '{table}' of {db.display} failed: {detail}") from None
    finally:
        conn.close()


def _check_keys(data: Frame, key: list[str]) -> None:
    if not key:
        raise PluginError("mode 'upsert' needs key: the column(s) that identify a row, e.g. key: [id]")
    columns = data.collect_schema().names()
    missing = [k for k in key if k not in columns]
    if missing:
        raise PluginError(
            f"key column '{missing[0]}' not found in the data; available columns: {', '.join(columns)}"
        )
    dupes = data.lazy().select(key).filter(pl.struct(key).is_duplicated()).head(1).collect()
    if dupes.height:
        example = dupes.row(0, named=True)
        raise PluginError(
            f"upsert key {key} repeats in the data (e.g. {example}); deduplicate the rows first"
        )


def _check_columns(table: str, columns: list[str], existing: list[str]) -> None:
    lower = {c.lower() for c in existing}
    extra = [c for c in columns if c.lower() not in lower]
    if extra:
        raise PluginError(
            f"column '{extra[0]}' of the data is not in table '{table}' "
            f"(its columns: {', '.join(existing)}); "
            "add the column to the table, or drop/rename it before loading"
        )


def _drop_quietly(db: Database, conn: Any, table: str) -> None:
    try:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {quote_table(db, table)}")
        conn.commit()
    except Exception:  # noqa: BLE001 - best effort; the load error is what the user needs
        pass


def _upsert(
    db: Database,
    conn: Any,
    target: str,
    data: Frame,
    key: list[str],
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """Rows of ``data`` whose key matches a row are updated, the others inserted (no unique index needed)."""
    stage_name = f"pipedeck_stage_{uuid.uuid4().hex[:10]}"
    stage = quote_ident(db, stage_name)
    cur = conn.cursor()
    schema = data.collect_schema()
    columns = schema.names()
    cur.execute(create_table_sql(db, stage_name, schema, None, temp=True))
    rows = insert_rows(db, conn, stage, data, progress, cancel)
    q = {c: quote_ident(db, c) for c in columns}
    match = " AND ".join(f"t.{q[k]} = s.{q[k]}" for k in key)
    values = [c for c in columns if c not in key]
    if values:
        if db.dialect == "postgresql":
            sets = ", ".join(f"{q[c]} = s.{q[c]}" for c in values)
            cur.execute(f"UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE {match}")
        elif db.dialect == "mysql":
            sets = ", ".join(f"t.{q[c]} = s.{q[c]}" for c in values)
            cur.execute(f"UPDATE {target} AS t JOIN {stage} AS s ON {match} SET {sets}")
        else:
            sets = ", ".join(f"{q[c]} = s.{q[c]}" for c in values)
            where = " AND ".join(f"{target}.{q[k]} = s.{q[k]}" for k in key)
            cur.execute(f"UPDATE {target} SET {sets} FROM {stage} AS s WHERE {where}")
    cols = ", ".join(q[c] for c in columns)
    picked = ", ".join(f"s.{q[c]}" for c in columns)
    cur.execute(
        f"INSERT INTO {target} ({cols}) SELECT {picked} FROM {stage} AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})"
    )
    if db.dialect != "postgresql":
        cur.execute(f"DROP {'TEMPORARY ' if db.dialect == 'mysql' else ''}TABLE {stage}")
    return rows


def insert_rows(
    db: Database,
    conn: Any,
    target: str,
    data: Frame,
    progress: Progress,
    cancel: threading.Event,
    batches: Iterator[pl.DataFrame] | None = None,
) -> int:
    """Insert every row of ``data`` into ``target`` (already quoted), reporting progress per batch;
    ``batches``: ``chunks(data, BATCH_ROWS)`` when the caller started them already."""
    schema = data.collect_schema()
    total = data.height if isinstance(data, pl.DataFrame) else None
    batches = batches if batches is not None else chunks(data, BATCH_ROWS)
    if db.dialect == "postgresql" and pl.Binary not in schema.values():
        return _copy(db, conn, target, data, batches, total, progress, cancel)
    cols = ", ".join(quote_ident(db, c) for c in schema.names())
    if db.dialect == "mysql" and pl.Binary not in schema.values() and _load_data_allowed(conn):
        return _load_data(db, conn, target, cols, batches, total, progress, cancel)
    marks = ", ".join([placeholder(db)] * len(schema))
    statement = f"INSERT INTO {target} ({cols}) VALUES ({marks})"
    cur = conn.cursor()
    done = 0
    for batch in batches:
        for chunk in _bindable(db, batch).iter_slices(INSERT_BATCH_ROWS):
            if cancel.is_set():
                raise Cancelled
            cur.executemany(statement, chunk.rows())
            done += chunk.height
            progress(done, total)
    return done


def _load_data_allowed(conn: Any) -> bool:
    from orchestrator.plugins.mysqlload import GuardedConnection, local_infile_allowed

    return isinstance(conn, GuardedConnection) and local_infile_allowed(conn)


def _load_data(
    db: Database,
    conn: Any,
    target: str,
    cols: str,
    batches: Iterator[pl.DataFrame],
    total: int | None,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """MariaDB/MySQL: each batch as CSV through LOAD DATA LOCAL (about 4x faster than batched inserts)."""
    from orchestrator.plugins.mysqlload import load_batch

    done = 0
    for batch in batches:
        if cancel.is_set():
            raise Cancelled
        load_batch(conn, target, cols, _bindable(db, batch))
        done += batch.height
        progress(done, total)
    return done


def _copy(
    db: Database,
    conn: Any,
    target: str,
    data: Frame,
    batches: Iterator[pl.DataFrame],
    total: int | None,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """COPY the frame into ``target``, in binary when every column allows it (see ``pgcopy``), else CSV.

    The queued writer sends from its own thread: while one batch travels and the server stores it, the
    next one is computed (a lazy frame streams its batches) and encoded.
    """
    from psycopg.copy import QueuedLibpqWriter

    schema = data.collect_schema()
    cursor = conn.cursor()
    binary = BinaryCopy.plan(schema, _column_types(cursor, target)) if BINARY_COPY else None
    cols = ", ".join(quote_ident(db, c) for c in schema.names())
    statement = f"COPY {target} ({cols}) FROM STDIN (FORMAT {'binary' if binary else 'csv'})"
    done = 0
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        if binary:
            copy.write(SIGNATURE)
        for chunk in batches:
            if cancel.is_set():
                raise Cancelled
            copy.write(binary.encode(chunk) if binary else chunk.write_csv(include_header=False))
            done += chunk.height
            progress(done, total)
        if binary:
            copy.write(TRAILER)
    return done


def _column_types(cursor: Any, target: str) -> dict[str, int]:
    """The type OID of each column of ``target`` (already quoted)."""
    cursor.execute(f"SELECT * FROM {target} WHERE false")
    return {column.name: column.type_code for column in cursor.description}


def _bindable(db: Database, frame: pl.DataFrame) -> pl.DataFrame:
    """Convert what a driver cannot bind (SQLite: dates, decimals; MariaDB: durations, time zones)."""
    if db.dialect == "postgresql":
        return frame
    exprs = [
        expr.alias(name)
        for name, dtype in frame.schema.items()
        if (expr := _bind_expr(db, pl.col(name), dtype)) is not None
    ]
    return frame.with_columns(exprs) if exprs else frame


def _bind_expr(db: Database, col: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    if dtype == pl.Categorical or isinstance(dtype, pl.Enum):
        return col.cast(pl.String)
    if isinstance(dtype, pl.Duration):
        return col.dt.total_microseconds()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:  # stored as UTC without a zone
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.dt.to_string() if db.dialect == "sqlite" else col
    if db.dialect != "sqlite":
        return None
    if dtype in (pl.Date, pl.Time) or isinstance(dtype, pl.Datetime):
        return col.dt.to_string()
    if isinstance(dtype, pl.Decimal):
        return col.cast(pl.Float64)
    if dtype == pl.UInt64:
        return col.cast(pl.String)  # may exceed SQLite's signed 64-bit integers
    return None
