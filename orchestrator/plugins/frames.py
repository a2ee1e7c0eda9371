"""Built-in plugins: transforms of one table (columns, rows, aggregates, Polars SQL)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from orchestrator.plugins.base import COLUMN_KEYS, COLUMN_NAMES, PluginError, StepContext, TransformPlugin
from orchestrator.plugins.expressions import (
    AGGREGATES,
    checked,
    parse_aggregate,
    parse_expr,
    polars_errors,
    require_columns,
)
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.sqlguard import check_polars_sql

if TYPE_CHECKING:
    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    pl = LazyModule("polars")

_CONFIG = ConfigDict(extra="forbid", defer_build=True)
_EXPR: JsonDict = {"format": "expression"}


class ColumnsArgs(BaseModel):
    model_config = _CONFIG

    columns: list[str] = Field(
        min_length=1, description="Column names", examples=[["id", "amount"]], json_schema_extra=COLUMN_NAMES
    )


class SelectColumns(TransformPlugin):
    name = "select_columns"
    description = "Keep only the listed columns, in the listed order."
    Args = ColumnsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        require_columns(data, self.args.columns)
        with polars_errors(data):
            return data.select(self.args.columns)


class DropColumns(TransformPlugin):
    name = "drop_columns"
    description = "Remove the listed columns."
    Args = ColumnsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        require_columns(data, self.args.columns)
        with polars_errors(data):
            return data.drop(self.args.columns)


class RenameColumnsArgs(BaseModel):
    model_config = _CONFIG

    mapping: dict[str, str] = Field(
        min_length=1,
        description="Old name -> new name",
        examples=[{"amt": "amount", "cust": "customer_id"}],
        json_schema_extra=COLUMN_KEYS,
    )


class RenameColumns(TransformPlugin):
    name = "rename_columns"
    description = "Rename columns (old name -> new name)."
    Args = RenameColumnsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        require_columns(data, list(self.args.mapping))
        with polars_errors(data):
            return data.rename(self.args.mapping)


class FilterRowsArgs(BaseModel):
    model_config = _CONFIG

    expr: str = Field(
        description="Keep the rows where this SQL condition is true",
        examples=["amount > 10 AND country IN ('FR', 'DE')"],
        json_schema_extra=_EXPR,
    )


class FilterRows(TransformPlugin):
    name = "filter_rows"
    description = "Keep the rows matching a SQL condition, e.g. amount > 10."
    Args = FilterRowsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        predicate = parse_expr(self.args.expr)
        with polars_errors(data, f"expr '{self.args.expr}'"):
            return checked(data.filter(predicate), data, f"expr '{self.args.expr}'")


class WithColumnsArgs(BaseModel):
    model_config = _CONFIG

    columns: dict[str, str] = Field(
        min_length=1,
        description="New or replaced columns: name -> SQL expression (may use columns defined before it)",
        examples=[{"amount_eur": "amount * 0.92", "big": "amount > 100"}],
        json_schema_extra=_EXPR,
    )


class WithColumns(TransformPlugin):
    name = "with_columns"
    description = "Add or replace columns computed by SQL expressions, e.g. amount_eur = amount * 0.92."
    Args = WithColumnsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        result = data
        for name, text in self.args.columns.items():
            expr = parse_expr(text, f"column '{name}'")
            with polars_errors(result, f"column '{name}'"):
                result = checked(result.with_columns(expr.alias(name)), result, f"column '{name}'")
        return result


@functools.cache
def _simple_types() -> dict[str, pl.DataType | type[pl.DataType]]:
    """Type names -> Polars dtypes (built on first use: Polars is imported when a plugin runs)."""
    return {
        **dict.fromkeys(["int", "integer", "int64", "bigint", "long"], pl.Int64),
        **dict.fromkeys(["int32", "int4"], pl.Int32),
        **dict.fromkeys(["int16", "smallint"], pl.Int16),
        **dict.fromkeys(["int8", "tinyint"], pl.Int8),
        "uint8": pl.UInt8,
        "uint16": pl.UInt16,
        "uint32": pl.UInt32,
        "uint64": pl.UInt64,
        **dict.fromkeys(["float", "double", "float64", "real8", "number"], pl.Float64),
        **dict.fromkeys(["float32", "real"], pl.Float32),
        **dict.fromkeys(["str", "string", "text", "varchar", "utf8"], pl.String),
        **dict.fromkeys(["bool", "boolean"], pl.Boolean),
        "date": pl.Date,
        **dict.fromkeys(["datetime", "timestamp"], pl.Datetime("us")),
        "time": pl.Time,
    }


_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
TYPE_NAMES = (
    "int, int32, int16, int8, uint8..uint64, float, float32, string, bool, date, datetime, time, decimal(p,s)"
)


def parse_dtype(text: str) -> pl.DataType | type[pl.DataType]:
    """A type name as a user writes it (``int``, ``string``, ``decimal(12,2)``) -> a Polars dtype."""
    key = text.strip().lower()
    simple = _simple_types()
    if key in simple:
        return simple[key]
    decimal = _DECIMAL.match(key)
    if decimal:
        return pl.Decimal(int(decimal.group(1)), int(decimal.group(2)))
    raise PluginError(f"unknown type '{text}'; use one of: {TYPE_NAMES}")


def _cast(column: pl.Expr, source: pl.DataType, target: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """Cast strictly; text to dates and times is parsed (ISO formats and the common variants)."""
    if source == pl.String and target == pl.Date:
        return column.str.to_date(strict=True)
    if source == pl.String and target == pl.Time:
        return column.str.to_time(strict=True)
    if source == pl.String and isinstance(target, pl.Datetime):
        return column.str.to_datetime(time_unit="us", strict=True)
    return column.cast(target, strict=True)


class CastColumnsArgs(BaseModel):
    model_config = _CONFIG

    types: dict[str, str] = Field(
        min_length=1,
        description=f"Column -> type. Types: {TYPE_NAMES}. A value that does not convert fails the step",
        examples=[{"amount": "float", "customer_id": "int", "ts": "datetime"}],
        json_schema_extra=COLUMN_KEYS,
    )


class CastColumns(TransformPlugin):
    name = "cast_columns"
    description = "Convert columns to other types (int, float, string, date, datetime, decimal(p,s)...)."
    Args = CastColumnsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        dtypes = {column: parse_dtype(text) for column, text in self.args.types.items()}
        require_columns(data, list(dtypes))
        schema = data.collect_schema()
        exprs = [_cast(pl.col(column), schema[column], dtype) for column, dtype in dtypes.items()]
        with polars_errors(data, "cast_columns"):
            return checked(data.with_columns(exprs), data, "cast_columns")


class AggregateArgs(BaseModel):
    model_config = _CONFIG

    by: list[str] = Field(
        default_factory=list,
        description="Group by these columns (none: one row for the table)",
        examples=[["country"]],
        json_schema_extra=COLUMN_NAMES,
    )
    aggs: dict[str, str] = Field(
        min_length=1,
        description=(
            "Output column -> aggregate: sum(x), count(x), count(*), mean(x), min(x), max(x), n_unique(x), "
            "median(x), "
            "or a bare function name applied to the column of the same name, or any SQL aggregate expression"
        ),
        examples=[{"total": "sum(amount)", "orders": "count(order_id)", "avg_amount": "mean(amount)"}],
        # mean(x), n_unique(x)... are shortcuts run without SQL: validation allows their names
        json_schema_extra={**_EXPR, "functions": list(AGGREGATES)},
    )


class Aggregate(TransformPlugin):
    name = "aggregate"
    description = "Group rows by columns and compute sums, counts, means, min, max, distinct counts."
    Args = AggregateArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        args: AggregateArgs = self.args
        require_columns(data, args.by)
        exprs = [parse_aggregate(out, spec) for out, spec in args.aggs.items()]
        with polars_errors(data, "aggregate"):
            if not args.by:
                return checked(data.select(exprs), data, "aggregate")
            grouped = data.group_by(args.by, maintain_order=True).agg(exprs)
            return checked(grouped, data, "aggregate")


class SortRowsArgs(BaseModel):
    model_config = _CONFIG

    by: str | list[str] = Field(
        description="Column(s) to sort by", examples=[["country", "amount"]], json_schema_extra=COLUMN_NAMES
    )
    descending: bool | list[bool] = Field(
        default=False,
        description="Largest first (one flag, or one per column)",
        examples=[False, [False, True]],
    )
    nulls_last: bool = Field(default=True, description="Put missing values (nulls) last", examples=[True])


class SortRows(TransformPlugin):
    name = "sort_rows"
    description = "Sort rows by one or more columns."
    Args = SortRowsArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        by = [self.args.by] if isinstance(self.args.by, str) else list(self.args.by)
        descending = self.args.descending
        if isinstance(descending, list) and len(descending) != len(by):
            raise PluginError(
                f"descending has {len(descending)} flags for {len(by)} sort columns; give one each"
            )
        require_columns(data, by)
        with polars_errors(data):
            return data.sort(by, descending=descending, nulls_last=self.args.nulls_last, maintain_order=True)


class DeduplicateArgs(BaseModel):
    model_config = _CONFIG

    subset: list[str] | None = Field(
        default=None,
        description="Rows are duplicates when these columns match (all columns when empty)",
        examples=[["order_id"]],
        json_schema_extra=COLUMN_NAMES,
    )
    keep: Literal["first", "last"] = Field(
        default="first", description="Which of the duplicates to keep", examples=["first"]
    )


class Deduplicate(TransformPlugin):
    name = "deduplicate"
    description = "Remove duplicate rows (on all columns or a subset), keeping the first."
    Args = DeduplicateArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        subset = self.args.subset or None
        if subset:
            require_columns(data, subset)
        with polars_errors(data):
            return data.unique(subset=subset, keep=self.args.keep, maintain_order=True)


class FillNullArgs(BaseModel):
    model_config = _CONFIG

    values: dict[str, Any] = Field(
        min_length=1,
        description="Column -> value replacing its nulls",
        examples=[{"amount": 0, "country": "unknown"}],
        json_schema_extra=COLUMN_KEYS,
    )


class FillNull(TransformPlugin):
    name = "fill_null"
    description = "Replace missing values (nulls) with a value per column."
    Args = FillNullArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        require_columns(data, list(self.args.values))
        exprs = [pl.col(c).fill_null(pl.lit(v)) for c, v in self.args.values.items()]
        with polars_errors(data, "fill_null"):
            return checked(data.with_columns(exprs), data, "fill_null")


class SqlTransformArgs(BaseModel):
    model_config = _CONFIG

    query: str = Field(
        description=(
            "A SQL query over the table named `data` (Polars SQL): one SELECT (or WITH ... SELECT), "
            "no other tables and no file readers such as read_csv"
        ),
        examples=["SELECT country, sum(amount) AS total FROM data GROUP BY country"],
        # "dialect" tells validation this is Polars SQL, not SQL for a destination database
        json_schema_extra={"format": "sql", "dialect": "polars"},
    )


class SqlTransform(TransformPlugin):
    name = "sql_transform"
    description = "Transform the table with a SQL query over the table named `data` (Polars SQL)."
    Args = SqlTransformArgs

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        query = self.args.query
        if not query.strip():
            raise PluginError("query is empty; write e.g. SELECT * FROM data")
        check_polars_sql(query, expression=False, tables={"data"})
        with polars_errors(data, "query"):
            # nothing but `data` is registered: no frames of the caller's scope by name
            context = pl.SQLContext(frames={"data": data}, register_globals=False)
            result = context.execute(query, eager=isinstance(data, pl.DataFrame))
            return checked(result, data, "query")
