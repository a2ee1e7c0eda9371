"""MariaDB/MySQL loads through ``LOAD DATA LOCAL INFILE``, with the client deciding what it sends.

With LOCAL, the *server* names the file the client sends, and PyMySQL opens whatever name it is given: a
hostile server a pipeline connects to could read any file the run's process can read, in answer to any
statement. ``GuardedConnection`` answers such a request only while a load offers data, only for the
one name that load put in its statement, and with that data from memory; it opens no file. Any other
request gets nothing and fails the statement.

LOCAL also turns errors into warnings (the server cannot stop the client's stream), so every batch is
checked: a warning or a row count other than the batch's fails the load, as a strict INSERT would have,
and the transaction rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pymysql
from pymysql.connections import MySQLResult
from pymysql.constants import CR
from pymysql.protocol import LoadLocalPacketWrapper

from orchestrator.plugins.lazy import LazyModule

if TYPE_CHECKING:
    import polars as pl
else:
    pl = LazyModule("polars")

#: bytes per packet of the data sent (PyMySQL's own choice for files)
_PACKET = 16 * 1024


class LocalFileRefused(pymysql.err.OperationalError):  # type: ignore[misc]
    """The server asked for a local file that no load of ours offered."""


class RowRefused(pymysql.err.DataError):  # type: ignore[misc]
    """A row of a LOAD DATA LOCAL batch was skipped or changed (a warning): what a strict INSERT raises."""


class GuardedConnection(pymysql.connections.Connection):  # type: ignore[misc]
    """A PyMySQL connection whose LOCAL INFILE requests are served only from ``offer(...)``."""

    def __init__(self, **kwargs: Any) -> None:
        self._offered: tuple[bytes, bytes] | None = None
        super().__init__(local_infile=True, **kwargs)

    @contextmanager
    def offer(self, data: bytes) -> Iterator[str]:
        """Within the block, a LOCAL INFILE request for the yielded name (and only it) receives ``data``."""
        name = f"pipedeck-{uuid.uuid4().hex}.csv"
        self._offered = (name.encode(), data)
        try:
            yield name
        finally:
            self._offered = None

    def _read_query_result(self, unbuffered: bool = False) -> int:
        # PyMySQL's own, with the result class that serves LOCAL INFILE requests from the offer
        self._result = None
        result = _GuardedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return int(result.affected_rows or 0)


class _GuardedResult(MySQLResult):  # type: ignore[misc]
    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn: GuardedConnection = self.connection
        requested = LoadLocalPacketWrapper(first_packet).filename
        offered = conn._offered
        try:
            if offered is not None and requested == offered[0]:
                data = memoryview(offered[1])
                for start in range(0, len(data), _PACKET):
                    conn.write_packet(data[start : start + _PACKET])
        finally:
            conn.write_packet(b"")  # the end of the data (none at all when refused)
            answer = conn._read_packet()
        if offered is None or requested != offered[0]:
            shown = requested.decode("utf-8", "replace")[:200]
            raise LocalFileRefused(
                CR.CR_COMMANDS_OUT_OF_SYNC,
                f"the server asked for the local file {shown!r}; Pipedeck sends only the rows it is "
                "loading, never a file the server names",
            )
        if not answer.is_ok_packet():
            raise pymysql.err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        self._read_ok_packet(answer)


def local_infile_allowed(conn: Any) -> bool:
    """Whether the server accepts LOAD DATA LOCAL (``local_infile``); else batched inserts are used."""
    cursor = conn.cursor()
    cursor.execute("SELECT @@local_infile")
    row = cursor.fetchone()
    return bool(row and int(row[0]))


def load_batch(conn: GuardedConnection, target: str, columns: str, batch: pl.DataFrame) -> None:
    """Send one batch (already bindable) with LOAD DATA LOCAL; RowRefused when a row did not go in as
    it is (the server's first warning says why)."""
    data = _csv(batch)
    cursor = conn.cursor()
    with conn.offer(data) as name:
        cursor.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            f"LINES TERMINATED BY '\\n' ({columns})",
            (name,),
        )
    if cursor.rowcount != batch.height or cursor.warning_count:
        cursor.execute("SHOW WARNINGS LIMIT 1")
        warning = cursor.fetchone()
        if warning:
            raise RowRefused(int(warning[1]), str(warning[2]))
        raise RowRefused(0, f"{cursor.rowcount} of {batch.height} rows were stored")


def _csv(batch: pl.DataFrame) -> bytes:
    """The batch as LOAD DATA reads it above: strings always quoted (so the text "NULL" stays text), NULL
    bare, booleans as 1/0, times with microseconds and a space before them."""
    booleans = [pl.col(n).cast(pl.Int8) for n, t in batch.schema.items() if t == pl.Boolean]
    frame = batch.with_columns(booleans) if booleans else batch
    return frame.write_csv(
        include_header=False,
        null_value="NULL",
        quote_style="non_numeric",
        date_format="%Y-%m-%d",
        datetime_format="%Y-%m-%d %H:%M:%S%.6f",
        time_format="%H:%M:%S%.6f",
    ).encode()
