"""PostgreSQL binary COPY: a frame's batches encoded column by column with NumPy.

The server then stores values instead of parsing text, which halves its work on a load (measured on W4:
0.5 s of server CPU for 900,000 rows against 1.1 s with CSV). Each field is its length (4 bytes, -1 for
NULL) and its bytes, big-endian; a row starts with its field count. Rows vary in length (text, NULLs),
so a batch is written in one buffer: every row's fixed-width part at once through a flat index, and the
text bytes of each column where the index says they go.

``BinaryCopy.plan`` says whether a frame can go this way into a given table: every column of a type
encoded here, matching the table's column type, and no value whose meaning would differ from CSV
(nanosecond times, time zones on a column without one...). Otherwise the load uses CSV, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.plugins.lazy import LazyModule

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
else:
    np = LazyModule("numpy")
    pl = LazyModule("polars")

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags, extension
TRAILER = b"\xff\xff"
#: PostgreSQL counts dates and timestamps from 2000-01-01, Polars from 1970-01-01
_PG_EPOCH_DAYS = 10_957
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000

# type OIDs of the table columns this module encodes
INT2, INT4, INT8, FLOAT4, FLOAT8, BOOL = 21, 23, 20, 700, 701, 16
TEXT, VARCHAR, DATE, TIMESTAMP, TIMESTAMPTZ = 25, 1043, 1082, 1114, 1184


@dataclass(frozen=True)
class _Column:
    name: str
    #: bytes of a non-NULL value; 0 for text
    width: int
    #: the column's non-NULL values as a big-endian NumPy array (fixed-width columns)
    values: Callable[[pl.Series], np.ndarray] | None


def _int(width: int) -> Callable[[pl.Series], np.ndarray]:
    dtype = {2: pl.Int16, 4: pl.Int32, 8: pl.Int64}[width]
    return lambda s: s.cast(dtype, strict=True).to_numpy().astype(f">i{width}")


def _float(width: int) -> Callable[[pl.Series], np.ndarray]:
    dtype = pl.Float32 if width == 4 else pl.Float64
    return lambda s: s.cast(dtype).to_numpy().astype(f">f{width}")


def _column(name: str, dtype: pl.DataType, oid: int) -> _Column | None:
    """How to encode a column of ``dtype`` for a table column of type ``oid``; None: not in binary."""
    if oid in (INT2, INT4, INT8) and dtype.is_integer():
        width = {INT2: 2, INT4: 4, INT8: 8}[oid]
        return _Column(name, width, _int(width))
    if oid == FLOAT8 and (dtype.is_float() or dtype.is_integer()):
        return _Column(name, 8, _float(8))
    if oid == FLOAT4 and dtype == pl.Float32:  # from a Float64, text is rounded once, a cast twice
        return _Column(name, 4, _float(4))
    if oid == BOOL and dtype == pl.Boolean:
        return _Column(name, 1, lambda s: s.cast(pl.UInt8).to_numpy().astype(">u1"))
    if oid in (TEXT, VARCHAR) and (dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)):
        return _Column(name, 0, None)
    if oid == DATE and dtype == pl.Date:
        return _Column(name, 4, lambda s: (s.to_physical().to_numpy() - _PG_EPOCH_DAYS).astype(">i4"))
    if (
        isinstance(dtype, pl.Datetime)
        and dtype.time_unit in ("us", "ms")  # nanoseconds: PostgreSQL rounds text, binary would cut
        and oid == (TIMESTAMPTZ if dtype.time_zone else TIMESTAMP)
    ):
        return _Column(name, 8, _timestamp)
    return None


def _timestamp(s: pl.Series) -> np.ndarray:
    micros = s.dt.cast_time_unit("us").to_physical().to_numpy()  # UTC when the column has a zone
    return (micros - _PG_EPOCH_US).astype(">i8")


class BinaryCopy:
    """Encodes a frame's batches for ``COPY table (columns) FROM STDIN (FORMAT binary)``."""

    def __init__(self, columns: list[_Column]) -> None:
        self.columns = columns
        self.names = [c.name for c in columns]

    @classmethod
    def plan(cls, schema: pl.Schema, table_types: Mapping[str, int]) -> BinaryCopy | None:
        """The encoder for frames of ``schema`` into a table whose columns have ``table_types`` (name ->
        type OID; names as PostgreSQL reports them), or None when some column cannot go in binary."""
        columns = []
        for name, dtype in schema.items():
            oid = table_types.get(name)
            column = _column(name, dtype, oid) if oid is not None else None
            if column is None:
                return None
            columns.append(column)
        return cls(columns)

    def encode(self, frame: pl.DataFrame) -> bytes:
        """One batch as COPY binary tuples (no signature, no trailer)."""
        n = frame.height
        if n == 0:
            return b""
        fields: list[tuple[np.ndarray, np.ndarray, np.ndarray | bytes]] = []  # (lengths, valid, data)
        sizes = np.full(n, 2, dtype=np.int64)  # each row's field count
        for column in self.columns:
            series = frame.get_column(column.name)
            valid = ~series.is_null().to_numpy()
            if column.values is None:
                text = series.cast(pl.String)
                lengths = text.str.len_bytes().fill_null(-1).to_numpy().astype(np.int64)
                data: np.ndarray | bytes = (text.str.join("", ignore_nulls=True).item() or "").encode()
            else:
                lengths = np.where(valid, column.width, -1).astype(np.int64)
                data = column.values(series.drop_nulls())
            fields.append((lengths, valid, data))
            sizes += 4 + np.maximum(lengths, 0)
        ends = np.cumsum(sizes)
        out = np.empty(int(ends[-1]), dtype=np.uint8)
        at = ends - sizes  # where each row starts, then where its next field starts
        _scatter(out, at, np.full(n, len(self.columns), dtype=">i2"))
        at = at + 2
        for lengths, valid, data in fields:
            _scatter(out, at, lengths.astype(">i4"))
            at = at + 4
            if isinstance(data, bytes):
                _scatter_text(out, at, lengths, data)
            else:
                _scatter(out, at if len(data) == n else at[valid], data)
            at = at + np.maximum(lengths, 0)
        return out.tobytes()


def _scatter(out: np.ndarray, at: np.ndarray, values: np.ndarray) -> None:
    """Write each value's bytes at its offset in ``out``."""
    width = values.dtype.itemsize
    cells = values.view(np.uint8).reshape(-1, width)
    out[at[:, None] + np.arange(width)] = cells


def _scatter_text(out: np.ndarray, at: np.ndarray, lengths: np.ndarray, data: bytes) -> None:
    """Write each row's text bytes (``data`` holds them back to back, NULLs taking none) at its offset."""
    if not data:
        return
    counts = np.maximum(lengths, 0)
    starts = np.cumsum(counts) - counts  # where each row's text starts in ``data``
    index = np.repeat(at - starts, counts) + np.arange(len(data))
    out[index] = np.frombuffer(data, dtype=np.uint8)
