"""Built-in plugins: SQL databases (PostgreSQL, MariaDB/MySQL, SQLite): extract, load, execute."""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from orchestrator.plugins.base import (
    SECRET_FIELD,
    ExtractPlugin,
    LoadPlugin,
    PluginError,
    StepContext,
    TransformAtLoadPlugin,
)
from orchestrator.plugins.expressions import polars_errors
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.sqldb import (
    DSN_HELP,
    Database,
    begin,
    connect,
    driver_errors,
    first_line,
    iter_batches,
    missing_table_error,
    parse_dsn,
    quote_ident,
    quote_table,
    rollback,
    rows_to_frame,
    run_sync,
    table_columns,
)
from orchestrator.plugins.sqlguard import (
    SqliteAuthorizer,
    check_sql_script,
    sqlite_user_statements,
    statement_label,
)
from orchestrator.plugins.sqlload import load_frame

if TYPE_CHECKING:
    import asyncio

    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    asyncio = LazyModule("asyncio")  # the event loop is a run's, not validation's
    pl = LazyModule("polars")

_CONFIG = ConfigDict(extra="forbid", defer_build=True)
#: a DSN may carry a password: secret-capable, and checked against the network policy
_DSN: JsonDict = {**SECRET_FIELD, "format": "dsn"}
_SQL: JsonDict = {"format": "sql"}


def _dsn_field() -> Any:
    return Field(
        description=DSN_HELP,
        examples=["${{ secrets.WAREHOUSE_DSN }}", "sqlite:///warehouse.db"],
        json_schema_extra=_DSN,
    )


class SqlExtractArgs(BaseModel):
    model_config = _CONFIG

    dsn: str = _dsn_field()
    query: str | None = Field(
        default=None,
        description="A SELECT query to run (give either query or table)",
        examples=["SELECT id, amount, country FROM orders WHERE amount > 10"],
        json_schema_extra=_SQL,
    )
    table: str | None = Field(
        default=None,
        description="A table to read whole (or schema.table), instead of a query",
        examples=["orders"],
    )
    columns: list[str] | None = Field(
        default=None, description="With table: read only these columns", examples=[["id", "amount"]]
    )
    batch_size: int = Field(
        default=50_000, ge=1, le=1_000_000, description="Rows fetched per round trip", examples=[50_000]
    )

    @model_validator(mode="after")
    def _query_or_table(self) -> Self:
        if bool(self.query and self.query.strip()) == bool(self.table):
            raise ValueError("give either query or table (exactly one of them)")
        if self.columns and not self.table:
            raise ValueError("columns goes with table; with a query, list the columns in the SELECT")
        return self


def limited(query: str, rows: int | None) -> str:
    """``query`` returning at most ``rows`` rows (a preview's limit, pushed down to the server)."""
    if rows is None:
        return query
    body = query.strip().rstrip(";").rstrip()
    return f"SELECT * FROM ({body}) AS pipedeck_preview LIMIT {int(rows)}"


def _extract(
    db: Database, args: SqlExtractArgs, limit: int | None, *, progress: Any, cancel: threading.Event
) -> pl.DataFrame:
    conn = connect(db)
    try:
        query = args.query or _table_query(db, conn, args.table or "", args.columns)
        query = limited(query, limit)
        cursor = _streaming_cursor(db, conn)
        cursor.execute(query)
        if cursor.description is None:
            raise PluginError(
                "the query returns no rows (is it a SELECT?); use sql_execute for other statements"
            )
        names = [d[0] for d in cursor.description]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise PluginError(
                f"the query returns column '{repeated[0]}' more than once; name them apart with AS"
            )
        frames, done = [], 0
        for rows in iter_batches(cursor, args.batch_size, cancel):
            frames.append(rows_to_frame(names, rows))
            done += len(rows)
            progress(done, None)
        if not frames:
            return rows_to_frame(names, [])
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
    except driver_errors() as exc:
        raise PluginError(f"query failed on {db.display}: {first_line(exc)}") from None
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise PluginError(
            f"cannot make a table of the query's result: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    finally:
        rollback(conn)
        conn.close()


def _table_query(db: Database, conn: Any, table: str, columns: list[str] | None) -> str:
    existing = table_columns(db, conn, table)
    if existing is None:
        raise missing_table_error(db, conn, table)
    for column in columns or []:
        if column not in existing:
            raise PluginError(
                f"column '{column}' not found in table '{table}'; its columns: {', '.join(existing)}"
            )
    picked = ", ".join(quote_ident(db, c) for c in columns) if columns else "*"
    return f"SELECT {picked} FROM {quote_table(db, table)}"


def _streaming_cursor(db: Database, conn: Any) -> Any:
    """A cursor that fetches batches from the server instead of the whole result at once."""
    if db.dialect == "postgresql":
        return conn.cursor(name=f"pipedeck_{uuid.uuid4().hex[:10]}")
    if db.dialect == "mysql":
        import pymysql.cursors

        return conn.cursor(pymysql.cursors.SSCursor)
    return conn.cursor()


class SqlExtract(ExtractPlugin):
    name = "sql_extract"
    description = "Read a table or a query's result from PostgreSQL, MariaDB/MySQL or SQLite, in batches."
    Args = SqlExtractArgs

    async def extract(self, ctx: StepContext) -> pl.DataFrame:
        db = parse_dsn(self.args.dsn, ctx.data_root, ctx.network)
        frame = await run_sync(ctx, _extract, db, self.args, ctx.row_limit)
        ctx.progress(frame.height, frame.height)
        return frame


class SqlLoadArgs(BaseModel):
    model_config = _CONFIG

    dsn: str = _dsn_field()
    table: str = Field(
        description="Target table (or schema.table); created from the data when missing",
        examples=["orders", "analytics.orders"],
    )
    mode: Literal["append", "replace", "upsert"] = Field(
        default="append",
        description=(
            "append: add the rows; replace: empty the table, then add them (its definition is kept); "
            "upsert: update rows whose key matches, add the others. "
            "One transaction: a failure changes nothing"
        ),
        examples=["append", "upsert"],
    )
    key: str | list[str] | None = Field(
        default=None,
        description="With upsert: the column(s) identifying a row",
        examples=["id", ["id", "day"]],
    )

    @model_validator(mode="after")
    def _key_for_upsert(self) -> Self:
        if self.mode == "upsert" and not self.key:
            raise ValueError("mode 'upsert' needs key: the column(s) identifying a row")
        return self

    @property
    def keys(self) -> list[str] | None:
        if self.key is None:
            return None
        return [self.key] if isinstance(self.key, str) else list(self.key)


class SqlLoad(LoadPlugin):
    name = "sql_load"
    description = "Load the table into PostgreSQL (COPY), MariaDB/MySQL or SQLite, in one transaction."
    Args = SqlLoadArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        args: SqlLoadArgs = self.args
        db = parse_dsn(args.dsn, ctx.data_root, ctx.network)
        with polars_errors(data, "reading the input"):
            await asyncio.to_thread(data.collect_schema)
        rows = await run_sync(ctx, load_frame, db, args.table, data, args.mode, args.keys)
        ctx.logger.info("loaded %d rows into %s (%s)", rows, args.table, args.mode)


class SqlExecuteArgs(BaseModel):
    model_config = _CONFIG

    dsn: str = _dsn_field()
    sql: str = Field(
        min_length=1,
        description=(
            "SQL statements separated by ;, run one by one in one transaction: a failure changes nothing "
            "(MariaDB commits DDL on its own). BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ATTACH and "
            "LOAD DATA LOCAL are refused"
        ),
        examples=[
            "DELETE FROM totals; INSERT INTO totals SELECT country, sum(amount) FROM orders GROUP BY 1"
        ],
        # SQL of the destination database, several statements: validation splits and checks them
        json_schema_extra={**_SQL, "dialect": "destination", "script": True},
    )


_DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})


def execute_script(db: Database, sql: str) -> int:
    """Run the statements of ``sql`` one by one inside one transaction; return the rows they changed."""
    statements = check_sql_script(sql, db.dialect)
    conn = connect(db)
    index, rows = 0, 0
    authorizer: SqliteAuthorizer | None = None
    # SQLite: the authorizer refuses BEGIN/COMMIT/SAVEPOINT while user statements run, not our own
    user_sql = sqlite_user_statements(conn) if db.dialect == "sqlite" else contextlib.nullcontext()
    try:
        begin(db, conn)
        before = conn.total_changes if db.dialect == "sqlite" else 0
        with user_sql as authorizer:
            for index, statement in enumerate(statements):
                rows += _run_statement(db, conn, statement)
                if _committed(db, conn):
                    raise PluginError(
                        f"SQL on {db.display}: {statement_label(statements, index)} ended the transaction; "
                        "remove the statement that commits"
                    )
        conn.commit()
        return conn.total_changes - before if db.dialect == "sqlite" else rows
    except driver_errors() as exc:
        detail = first_line(exc)
        if authorizer is not None and authorizer.refused and "not authorized" in detail:
            detail = authorizer.refused
        if db.dialect == "mysql" and any(s.split(None, 1)[0].upper() in _DDL for s in statements[:index]):
            detail += "; MariaDB had already committed the CREATE/ALTER/DROP statements before it"
        where = statement_label(statements, index)
        raise PluginError(f"SQL failed on {db.display}, nothing was changed: {where}: {detail}") from None
    finally:
        rollback(conn)
        conn.close()


def _run_statement(db: Database, conn: Any, statement: str) -> int:
    """Execute one statement; the rows it changed (0 when it returns rows or defines something)."""
    cursor = conn.cursor()
    if db.dialect == "postgresql":
        # binary results need the extended protocol, which runs one statement per message: a second one
        # hidden from the splitter (a quote it read otherwise) is an error, never run
        cursor.execute(statement, binary=True)
    else:
        cursor.execute(statement)  # PyMySQL without MULTI_STATEMENTS and sqlite3 run one statement each
    if db.dialect == "sqlite":
        for _ in cursor:  # a statement with RETURNING finishes only when its rows are read
            pass
        return 0
    return max(int(cursor.rowcount), 0) if cursor.description is None else 0


def _committed(db: Database, conn: Any) -> bool:
    """Whether a PostgreSQL statement ended the plugin's transaction (the guards should make this never)."""
    if db.dialect != "postgresql":
        return False
    from psycopg.pq import TransactionStatus

    return bool(conn.info.transaction_status == TransactionStatus.IDLE)


class SqlExecute(TransformAtLoadPlugin):
    name = "sql_execute"
    description = "Run SQL statements inside the destination database, in one transaction."
    Args = SqlExecuteArgs

    def execute(self, ctx: StepContext) -> None:
        db = parse_dsn(self.args.dsn, ctx.data_root, ctx.network)
        count = execute_script(db, self.args.sql)
        ctx.logger.info("SQL ran on %s (%d rows affected)", db.display, count)
