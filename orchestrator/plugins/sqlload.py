"""Load a frame into a table in one transaction: COPY on PostgreSQL, batched inserts elsewhere."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import polars as pl

from orchestrator.plugins.base import PluginError
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


def load_frame(
    db: Database,
    table: str,
    frame: pl.DataFrame,
    mode: str,
    key: list[str] | None,
    *,
    progress: Progress,
    cancel: threading.Event,
) -> int:
    """Append, replace or upsert ``frame`` into ``table``; on any failure the table is left as it was."""
    if mode == "upsert":
        _check_keys(frame, key or [])
    conn = connect(db, create=True)
    created = False
    try:
        begin(db, conn)
        existing = table_columns(db, conn, table)
        if existing is None:
            conn.cursor().execute(
                create_table_sql(db, table, frame.schema, key if mode == "upsert" else None)
            )
            created = True
        else:
            _check_columns(table, frame.columns, existing)
        target = quote_table(db, table)
        if mode == "upsert" and not created:
            _upsert(db, conn, target, frame, key or [], progress, cancel)
        else:
            if mode == "replace" and not created:
                conn.cursor().execute(f"DELETE FROM {target}")
            insert_rows(db, conn, target, frame, progress, cancel)
        conn.commit()
        return frame.height
    except BaseException as exc:
        rollback(conn)
        if created and db.dialect == "mysql":  # MariaDB commits DDL at once: undo the table we made
            _drop_quietly(db, conn, table)
        if isinstance(exc, driver_errors()):
            raise PluginError(
                f"loading into table '{table}' of {db.display} failed: {first_line(exc)}"
            ) from None
        if isinstance(exc, Cancelled):
            raise PluginError("the load was cancelled; the table was left as it was") from None
        raise
    finally:
        conn.close()


def _check_keys(frame: pl.DataFrame, key: list[str]) -> None:
    if not key:
        raise PluginError("mode 'upsert' needs key: the column(s) that identify a row, e.g. key: [id]")
    missing = [k for k in key if k not in frame.columns]
    if missing:
        raise PluginError(
            f"key column '{missing[0]}' not found in the data; available columns: {', '.join(frame.columns)}"
        )
    dupes = frame.select(key).filter(frame.select(key).is_duplicated())
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
    frame: pl.DataFrame,
    key: list[str],
    progress: Progress,
    cancel: threading.Event,
) -> None:
    """Rows of ``frame`` whose key matches a row are updated, the others inserted (no unique index needed)."""
    stage_name = f"pipedeck_stage_{uuid.uuid4().hex[:10]}"
    stage = quote_ident(db, stage_name)
    cur = conn.cursor()
    cur.execute(create_table_sql(db, stage_name, frame.schema, None, temp=True))
    insert_rows(db, conn, stage, frame, progress, cancel)
    q = {c: quote_ident(db, c) for c in frame.columns}
    match = " AND ".join(f"t.{q[k]} = s.{q[k]}" for k in key)
    values = [c for c in frame.columns if c not in key]
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
    cols = ", ".join(q[c] for c in frame.columns)
    picked = ", ".join(f"s.{q[c]}" for c in frame.columns)
    cur.execute(
        f"INSERT INTO {target} ({cols}) SELECT {picked} FROM {stage} AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match})"
    )
    if db.dialect != "postgresql":
        cur.execute(f"DROP {'TEMPORARY ' if db.dialect == 'mysql' else ''}TABLE {stage}")


def insert_rows(
    db: Database, conn: Any, target: str, frame: pl.DataFrame, progress: Progress, cancel: threading.Event
) -> None:
    """Insert every row of ``frame`` into ``target`` (already quoted), reporting progress per batch."""
    if db.dialect == "postgresql" and pl.Binary not in frame.schema.values():
        _copy_csv(db, conn, target, frame, progress, cancel)
        return
    cols = ", ".join(quote_ident(db, c) for c in frame.columns)
    marks = ", ".join([placeholder(db)] * frame.width)
    statement = f"INSERT INTO {target} ({cols}) VALUES ({marks})"
    prepared = _bindable(db, frame)
    cur = conn.cursor()
    done = 0
    for chunk in prepared.iter_slices(INSERT_BATCH_ROWS):
        if cancel.is_set():
            raise Cancelled
        cur.executemany(statement, chunk.rows())
        done += chunk.height
        progress(done, frame.height)


def _copy_csv(
    db: Database, conn: Any, target: str, frame: pl.DataFrame, progress: Progress, cancel: threading.Event
) -> None:
    from psycopg.copy import QueuedLibpqWriter

    cols = ", ".join(quote_ident(db, c) for c in frame.columns)
    done = 0
    cursor = conn.cursor()
    # the queued writer sends from its own thread, so the next chunk is formatted while one is sent
    writer = QueuedLibpqWriter(cursor) if QUEUED_COPY else None
    with cursor.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)", writer=writer) as copy:
        for chunk in frame.iter_slices(BATCH_ROWS):
            if cancel.is_set():
                raise Cancelled
            copy.write(chunk.write_csv(include_header=False))
            done += chunk.height
            progress(done, frame.height)


def _bindable(db: Database, frame: pl.DataFrame) -> pl.DataFrame:
    """Convert types a driver cannot bind (SQLite: dates, decimals, durations) before inserting."""
    if db.dialect != "sqlite":
        return frame
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype in (pl.Date, pl.Time) or isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.to_string())
        elif isinstance(dtype, pl.Decimal):
            exprs.append(col.cast(pl.Float64))
        elif isinstance(dtype, pl.Duration):
            exprs.append(col.dt.total_microseconds())
        elif dtype in (pl.Categorical,) or isinstance(dtype, pl.Enum):
            exprs.append(col.cast(pl.String))
    return frame.with_columns(exprs) if exprs else frame
