"""Database access for the SQL plugins: DSNs, connections, quoting and types for PostgreSQL, MariaDB, SQLite.

Every driver here is synchronous; async plugins run it in a worker thread (``run_sync``), so the event loop
never blocks, and a cancelled step stops the worker between batches and rolls back.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from orchestrator.egress import MYSQL_LOCAL_PARAMS, EgressPolicy, EgressRefused
from orchestrator.plugins.base import PluginError, StepContext
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.paths import resolve_path

if TYPE_CHECKING:
    import asyncio

    import polars as pl
else:
    asyncio = LazyModule("asyncio")  # the event loop is a run's, not validation's
    pl = LazyModule("polars")

Dialect = Literal["postgresql", "mysql", "sqlite"]
T = TypeVar("T")

_SCHEMES: dict[str, Dialect] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
DSN_HELP = (
    "Database URL: postgresql://user:password@host:5432/db, "
    "mysql://user:password@host:3306/db (MariaDB too), "
    "or sqlite:///path/in/data/root.db; usually a ${{ secrets.X }} reference"
)


class Cancelled(Exception):
    """Raised inside a worker thread when the step awaiting it was cancelled."""


@dataclass
class Database:
    """A parsed DSN: which dialect, how to connect, and a display form without the password."""

    dialect: Dialect
    url: str
    display: str
    sqlite_path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: where a PostgreSQL / MariaDB connection may go (a SQLite file is no network egress)
    network: EgressPolicy = field(default_factory=EgressPolicy.open, repr=False)

    @property
    def label(self) -> str:
        return {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL", "sqlite": "SQLite"}[self.dialect]


def _masked(parts: Any, scheme: str) -> str:
    user = f"{unquote(parts.username)}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{scheme}://{user}{host}{port}{parts.path}"


def parse_dsn(dsn: str, data_root: Path, network: EgressPolicy | None = None) -> Database:
    """Parse a DSN; SQLite paths resolve inside the data root, servers are reached as ``network`` allows
    (the step's ``ctx.network``; open when None). Raises PluginError on anything else."""
    text = dsn.strip()
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        raise PluginError(
            f"unsupported DSN '{text.split('://')[0]}://...'; use postgresql://, mysql:// (MariaDB) or sqlite:///path"
        )
    if dialect == "sqlite":
        return _parse_sqlite(text, data_root)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise PluginError(f"malformed DSN for {scheme}: {exc}") from None
    display = _masked(parts, scheme)
    if dialect == "postgresql":
        url = "postgresql://" + text.split("://", 1)[1]
        return Database("postgresql", url, display, network=network or EgressPolicy.open())
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or None,
        "charset": query.get("charset", "utf8mb4"),
        "connect_timeout": int(query.get("connect_timeout", 10)),
    }
    return Database("mysql", text, display, params=params, network=network or EgressPolicy.open())


def _parse_sqlite(text: str, data_root: Path) -> Database:
    rest = text.split("://", 1)[1]
    if not rest.startswith("/"):
        raise PluginError(f"SQLite DSN '{text}' needs three slashes: sqlite:///relative/path.db")
    raw = rest[1:].split("?", 1)[0]
    if raw == ":memory:":
        return Database("sqlite", text, text, sqlite_path=None)
    path = resolve_path(data_root, raw)
    return Database("sqlite", text, f"sqlite:///{raw}", sqlite_path=path)


def first_line(exc: BaseException) -> str:
    """The useful part of a driver error (PyMySQL's are ``(code, message)`` tuples)."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1].strip()
    else:
        text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def driver_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    import pymysql

    return (psycopg.Error, pymysql.Error, sqlite3.Error)


def _postgres_conninfo(db: Database) -> str:
    """The DSN, or (restricted) its parameters with every host resolved and checked into ``hostaddr``."""
    if not db.network.restricted:
        return db.url
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {key: str(value) for key, value in conninfo_to_dict(db.url).items()}
    try:
        return make_conninfo(**db.network.checked_postgres(params))
    except OSError as exc:
        raise _unresolved(db, exc) from None


def _mysql_params(db: Database) -> dict[str, Any]:
    """PyMySQL's arguments; restricted: to the checked address, with no local socket or file options."""
    if not db.network.restricted:
        return db.params
    query = {key.lower() for key in parse_qs(urlsplit(db.url).query, keep_blank_values=True)}
    if local := [p for p in MYSQL_LOCAL_PARAMS if p in query]:
        raise EgressRefused(
            f"refused DSN parameter {local[0]}: it reads a local file or socket on this server"
        )
    params = db.params
    try:
        address = db.network.resolve_checked(params["host"], params["port"], database=params["database"])
    except OSError as exc:
        raise _unresolved(db, exc) from None
    return {**params, "host": address}


def _unresolved(db: Database, exc: OSError) -> PluginError:
    return PluginError(f"cannot connect to {db.label} at {db.display}: cannot resolve its host ({exc})")


def connect(
    db: Database, *, create: bool = False, multi_statements: bool = False, load_data: bool = False
) -> Any:
    """A DB-API connection in manual-commit mode, to a server ``db.network`` allows; a PluginError saying
    what to check when it fails. ``load_data``: MariaDB/MySQL, a connection that can send a load's rows
    with LOAD DATA LOCAL (and nothing else: see ``mysqlload``)."""
    try:
        if db.dialect == "postgresql":
            import psycopg

            return psycopg.connect(_postgres_conninfo(db), connect_timeout=10)
        if db.dialect == "mysql":
            import pymysql
            from pymysql.constants import CLIENT

            flags = CLIENT.MULTI_STATEMENTS if multi_statements else 0
            if load_data:
                from orchestrator.plugins.mysqlload import GuardedConnection

                return GuardedConnection(**_mysql_params(db), autocommit=False, client_flag=flags)
            return pymysql.connect(**_mysql_params(db), autocommit=False, client_flag=flags)
        return _connect_sqlite(db, create)
    except PluginError:
        raise
    except EgressRefused as exc:
        raise PluginError(f"cannot connect to {db.label} at {db.display}: {exc}") from None
    except driver_errors() as exc:
        raise PluginError(
            f"cannot connect to {db.label} at {db.display}: {first_line(exc)}; check the dsn (host, port, "
            "user, password, database) and that the server is running"
        ) from None


def _connect_sqlite(db: Database, create: bool) -> sqlite3.Connection:
    # imported here: this function is the one place of this module the SQL guard touches
    from orchestrator.plugins.sqlguard import guard_sqlite

    if db.sqlite_path is None:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    else:
        if not create and not db.sqlite_path.exists():
            raise PluginError(
                f"SQLite database file {db.sqlite_path} does not exist; check the dsn ({db.display})"
            )
        db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        mode = "rwc" if create else "rw"
        uri = f"{db.sqlite_path.as_uri()}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    # user SQL runs on this connection: no ATTACH of other files, no pragmas that write, no extensions
    guard_sqlite(conn)
    return conn


def begin(db: Database, conn: Any) -> None:
    """Open the transaction explicitly (SQLite runs in autocommit mode until told otherwise)."""
    if db.dialect == "sqlite":
        conn.execute("BEGIN")


def rollback(conn: Any) -> None:
    try:
        if isinstance(conn, sqlite3.Connection):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.rollback()
    except Exception:  # noqa: BLE001 - the original error matters more than a failed rollback
        pass


def placeholder(db: Database) -> str:
    return "?" if db.dialect == "sqlite" else "%s"


def quote_ident(db: Database, name: str) -> str:
    """Quote one identifier for the dialect."""
    if db.dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` -> (schema, table); a PluginError for anything else."""
    if not _TABLE.match(table):
        raise PluginError(
            f"table name '{table}' is not valid; use letters, digits and _ (optionally schema.table)"
        )
    schema, _, name = table.rpartition(".")
    return schema or None, name


def quote_table(db: Database, table: str) -> str:
    schema, name = split_table(table)
    return (f"{quote_ident(db, schema)}." if schema else "") + quote_ident(db, name)


def table_columns(db: Database, conn: Any, table: str) -> list[str] | None:
    """The table's column names, or None when it does not exist."""
    schema, name = split_table(table)
    cur = conn.cursor()
    if db.dialect == "postgresql":
        cur.execute("SELECT to_regclass(%s)", (quote_table(db, table),))
        if cur.fetchone()[0] is None:
            return None
        cur.execute(f"SELECT * FROM {quote_table(db, table)} WHERE false")
        return [d[0] for d in cur.description]
    if db.dialect == "mysql":
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND table_name = %s ORDER BY ordinal_position",
            (schema, name),
        )
    else:
        cur.execute("SELECT name FROM pragma_table_info(?, ?)", (name, schema or "main"))
    columns = [row[0] for row in cur.fetchall()]
    return columns or None


def list_tables(db: Database, conn: Any) -> list[str]:
    """Table names the DSN's user sees in the default schema (for error messages)."""
    cur = conn.cursor()
    if db.dialect == "postgresql":
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY 1"
        )
    elif db.dialect == "mysql":
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
        )
    else:
        cur.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY 1")
    return [row[0] for row in cur.fetchall()]


def missing_table_error(db: Database, conn: Any, table: str) -> PluginError:
    tables = list_tables(db, conn)
    shown = ", ".join(tables[:30]) + (" ..." if len(tables) > 30 else "") if tables else "(none)"
    return PluginError(f"table '{table}' does not exist in {db.display}; tables there: {shown}")


def sql_type(db: Database, dtype: pl.DataType, *, key: bool = False) -> str:
    """The column type a table created for this Polars dtype gets."""
    if dtype == pl.Boolean:
        return "INTEGER" if db.dialect == "sqlite" else "BOOLEAN"
    if dtype.is_integer():
        return _integer_type(db, dtype)
    if dtype.is_float():
        if db.dialect == "sqlite":
            return "REAL"
        return (
            ("REAL" if db.dialect == "postgresql" else "FLOAT")
            if dtype == pl.Float32
            else ("DOUBLE PRECISION" if db.dialect == "postgresql" else "DOUBLE")
        )
    if isinstance(dtype, pl.Decimal):
        precision = min(dtype.precision or 38, 65)
        return (
            f"NUMERIC({precision},{dtype.scale})"
            if db.dialect != "mysql"
            else f"DECIMAL({precision},{dtype.scale})"
        )
    if isinstance(dtype, pl.Duration):  # elsewhere: microseconds
        return {"postgresql": "INTERVAL", "mysql": "BIGINT", "sqlite": "INTEGER"}[db.dialect]
    if db.dialect == "sqlite":
        return "BLOB" if dtype == pl.Binary else "TEXT"
    if dtype == pl.Date:
        return "DATE"
    if isinstance(dtype, pl.Datetime):
        if db.dialect == "mysql":
            return "DATETIME(6)"
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if dtype == pl.Time:
        return "TIME(6)" if db.dialect == "mysql" else "TIME"
    if dtype == pl.Binary:
        return "BYTEA" if db.dialect == "postgresql" else ("VARBINARY(255)" if key else "LONGBLOB")
    if dtype in (pl.String, pl.Null, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "VARCHAR(255)" if key and db.dialect == "mysql" else "TEXT"
    raise PluginError(
        f"columns of type {dtype} cannot be stored in a table; "
        "convert them (cast_columns, with_columns) or drop them"
    )


def _integer_type(db: Database, dtype: pl.DataType) -> str:
    if db.dialect == "sqlite":
        return "INTEGER"
    if db.dialect == "mysql":
        names = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
        bits = _bits(dtype)
        return names[bits] + (" UNSIGNED" if dtype.is_unsigned_integer() else "")
    bits = _bits(dtype) * (2 if dtype.is_unsigned_integer() else 1)
    return {8: "SMALLINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}.get(bits, "NUMERIC(20)")


def _bits(dtype: pl.DataType) -> int:
    return int(re.sub(r"\D", "", str(dtype)) or 64)


def create_table_sql(
    db: Database, table: str, schema: pl.Schema, key: list[str] | None, temp: bool = False
) -> str:
    """CREATE TABLE from a frame's schema, with a primary key on ``key`` when given."""
    cols = [
        f"{quote_ident(db, name)} {sql_type(db, dtype, key=bool(key and name in key))}"
        for name, dtype in schema.items()
    ]
    if key:
        cols.append(f"PRIMARY KEY ({', '.join(quote_ident(db, k) for k in key)})")
    kind = "TEMPORARY TABLE" if temp else "TABLE"
    suffix = " ON COMMIT DROP" if temp and db.dialect == "postgresql" else ""
    target = quote_ident(db, table) if temp else quote_table(db, table)
    return f"CREATE {kind} {target} ({', '.join(cols)}){suffix}"


def rows_to_frame(names: list[str], rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """Driver rows -> a DataFrame, types inferred from every row (mixed types widen to text)."""
    if not rows:
        return pl.DataFrame(schema=dict.fromkeys(names, pl.Null))
    try:
        return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None, strict=False)


def iter_batches(cursor: Any, size: int, cancel: threading.Event) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        if cancel.is_set():
            raise Cancelled
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield [tuple(r) for r in rows]


async def run_sync[T](ctx: StepContext, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args, progress=..., cancel=...)`` in a thread; progress reaches ``ctx`` on the loop thread,
    and cancelling the awaiting step sets ``cancel`` so ``fn`` stops at its next batch and rolls back."""
    loop = asyncio.get_running_loop()
    cancel = threading.Event()

    def progress(rows: int, total: int | None = None) -> None:
        loop.call_soon_threadsafe(ctx.progress, rows, total)

    task = asyncio.ensure_future(asyncio.to_thread(fn, *args, progress=progress, cancel=cancel))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel.set()
        # the worker still ends (rolled back); its error is expected, not news
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise
