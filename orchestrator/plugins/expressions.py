"""SQL expressions evaluated by Polars (never Python ``eval``), and errors a user can act on."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from orchestrator.plugins.base import PluginError
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.sqlguard import check_polars_sql

if TYPE_CHECKING:
    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    pl = LazyModule("polars")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(.*?)\s*\)\s*$", re.DOTALL)
_MISSING_COLUMN = re.compile(
    r"""(?:unable to find column|column not found:?|not found:)\s*["'`]?([^"'`;\n]+)["'`]?"""
)

#: aggregate name -> how it applies to one column
AGGREGATES: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "sum": lambda c: c.sum(),
    "count": lambda c: c.count(),
    "mean": lambda c: c.mean(),
    "avg": lambda c: c.mean(),
    "min": lambda c: c.min(),
    "max": lambda c: c.max(),
    "n_unique": lambda c: c.n_unique(),
    "median": lambda c: c.median(),
    "first": lambda c: c.first(),
    "last": lambda c: c.last(),
    "std": lambda c: c.std(),
    "var": lambda c: c.var(),
}


def columns_of(data: Frame) -> list[str]:
    """Column names of an eager or lazy frame (a lazy one resolves its schema, not its rows)."""
    return data.collect_schema().names()


def available(columns: Sequence[str]) -> str:
    return ", ".join(columns) if columns else "(none)"


def missing_column_error(name: str, columns: Sequence[str]) -> PluginError:
    """The error for a column that is not there, listing the ones that are."""
    return PluginError(f"column '{name}' not found; available columns: {available(columns)}")


def require_columns(data: Frame, names: Sequence[str], what: str = "column") -> list[str]:
    """Raise a clear PluginError unless every name is a column of ``data``; return the frame's columns."""
    columns = columns_of(data)
    for name in names:
        if name not in columns:
            raise PluginError(f"{what} '{name}' not found; available columns: {available(columns)}")
    return columns


def parse_expr(text: str, field: str = "expr") -> pl.Expr:
    """Parse one SQL expression (``amount > 10 AND country = 'FR'``) into a Polars expression."""
    if not text or not text.strip():
        raise PluginError(f"{field} is empty; write a SQL expression such as amount > 10")
    # Polars SQL can call table functions that read files: only allow-listed functions get through
    check_polars_sql(text, expression=True, field=f"{field} '{text}'")
    try:
        return pl.sql_expr(text)
    except pl.exceptions.PolarsError as exc:
        raise PluginError(f"{field} '{text}' is not a valid SQL expression: {_first_line(exc)}") from None


def parse_aggregate(out_name: str, spec: str) -> pl.Expr:
    """``sum(amount)``, ``count(order_id)``, ``mean(x)``, ``n_unique(x)``, ``count(*)``, a bare ``max``
    (applied to the column named ``out_name``) or any SQL aggregate expression."""
    text = spec.strip()
    if text in AGGREGATES:
        return AGGREGATES[text](pl.col(out_name)).alias(out_name)
    call = _CALL.match(text)
    if call:
        func, arg = call.group(1).lower(), call.group(2)
        if func == "count" and arg == "*":
            return pl.len().alias(out_name)
        if func in AGGREGATES and _IDENT.match(arg):
            return AGGREGATES[func](pl.col(arg)).alias(out_name)
    return parse_expr(text, f"aggregate '{out_name}'").alias(out_name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def polars_errors(data: Frame | None = None, what: str = "") -> Iterator[None]:
    """Turn Polars exceptions into PluginErrors: a missing column lists the available ones."""
    try:
        yield
    except PluginError:
        raise
    except pl.exceptions.ColumnNotFoundError as exc:
        columns = columns_of(data) if data is not None else []
        found = _MISSING_COLUMN.search(str(exc))
        name = found.group(1).strip() if found else _first_line(exc)
        raise missing_column_error(name, columns) from None
    except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
        prefix = f"{what}: " if what else ""
        raise PluginError(f"{prefix}{_first_line(exc)}") from None


def checked(result: Frame, data: Frame, what: str = "") -> Frame:
    """Resolve a lazy result's schema now, so a bad column or type fails this step, not a later one."""
    if isinstance(result, pl.LazyFrame):
        with polars_errors(data, what):
            result.collect_schema()
    return result
