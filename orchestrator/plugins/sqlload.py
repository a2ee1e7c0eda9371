"""Load a frame into a table in one transaction: COPY on PostgreSQL, batched inserts elsewhere."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from orchestrator.plugins.base import Frame, PluginError
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

Progress = Callable[[int, int | None], None]
BATCH_ROWS = 50_000
INSERT_BATCH_ROWS = 5_000
QUEUED_COPY = True


def chunks(data: Frame, size: int) -> Iterator[pl.DataFrame]:
    """Slices of an eager frame, or batches computed from a lazy one (never all of it in memory)."""
    if isinstance(data, pl.DataFrame):
        yield from data.iter_slices(size)
    else:
        yield from data.collect_batches(chunk_size=size)


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
    schema = data.collect_schema()
    if mode == "upsert":
        _check_keys(data, key or [])
    conn = connect(db, create=True)
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
            rows = insert_rows(db, conn, target, data, progress, cancel)
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
    db: Database, conn: Any, target: str, data: Frame, progress: Progress, cancel: threading.Event
) -> int:
    """Insert every row of ``data`` into ``target`` (already quoted), reporting progress per batch."""
    schema = data.collect_schema()
    total = data.height if isinstance(data, pl.DataFrame) else None
    if db.dialect == "postgresql" and pl.Binary not in schema.values():
        return _copy_csv(db, conn, target, data, total, progress, cancel)
    cols = ", ".join(quote_ident(db, c) for c in schema.names())
    marks = ", ".join([placeholder(db)] * len(schema))
    statement = f"INSERT INTO {target} ({cols}) VALUES ({marks})"
    cur = conn.cursor()
    done = 0
    for batch in chunks(data, BATCH_ROWS):
        for chunk in _bindable(db, batch).iter_slices(INSERT_BATCH_ROWS):
            if cancel.is_set():
                raise Cancelled
            cur.executemany(statement, chunk.rows())
            done += chunk.height
            progress(done, total)
    return done


def _copy_csv(
    db: Database,
    conn: Any,
    target: str,
    data: Frame,
    total: int | None,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    from psycopg.copy import QueuedLibpqWriter

    cols = ", ".join(quote_ident(db, c) for c in data.collect_schema().names())
    done = 0
    cursor = conn.cursor()
    # the queued writer sends from its own thread, so the next chunk is formatted while one is sent
    writer = QueuedLibpqWriter(cursor) if QUEUED_COPY else None
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)", writer=writer) as copy:
        for chunk in chunks(data, BATCH_ROWS):
            if cancel.is_set():
                raise Cancelled
            copy.write(chunk.write_csv(include_header=False))
            done += chunk.height
            progress(done, total)
    return done


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
