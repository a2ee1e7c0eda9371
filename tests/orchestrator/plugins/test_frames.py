"""Transform plugins: columns, rows, aggregates and Polars SQL, eager and lazy, with clear errors."""

from __future__ import annotations

import polars as pl
import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.frames import (
    Aggregate,
    CastColumns,
    Deduplicate,
    DropColumns,
    FillNull,
    FilterRows,
    RenameColumns,
    SelectColumns,
    SortRows,
    SqlTransform,
    WithColumns,
)

ORDERS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "amount": [5.0, 20.0, 12.5, None, 40.0],
        "country": ["FR", "DE", "FR", "ES", "DE"],
    }
)
MISSING = "column 'amout' not found; available columns: id, amount, country"


def run(plugin, ctx, data=ORDERS):
    result = plugin.transform(ctx, data)
    return result.collect() if isinstance(result, pl.LazyFrame) else result


@pytest.fixture(params=["eager", "lazy"])
def orders(request):
    return ORDERS if request.param == "eager" else ORDERS.lazy()


def test_filter_rows_keeps_matching_rows_eager_and_lazy(ctx, orders):
    out = run(FilterRows({"expr": "amount > 10 AND country <> 'ES'"}), ctx, orders)
    assert out["id"].to_list() == [2, 3, 5]
    assert isinstance(FilterRows({"expr": "amount > 10"}).transform(ctx, orders), type(orders))


def test_filter_rows_wrong_column_and_bad_expression(ctx, orders):
    with pytest.raises(PluginError) as err:
        FilterRows({"expr": "amout > 10"}).transform(ctx, orders)
    assert str(err.value) == MISSING
    with pytest.raises(PluginError, match=r"^expr 'amount >' is not a valid SQL expression: unable to parse"):
        FilterRows({"expr": "amount >"}).transform(ctx, orders)


def test_select_drop_rename(ctx, orders):
    assert run(SelectColumns({"columns": ["country", "id"]}), ctx, orders).columns == ["country", "id"]
    assert run(DropColumns({"columns": ["amount"]}), ctx, orders).columns == ["id", "country"]
    renamed = run(RenameColumns({"mapping": {"amount": "total"}}), ctx, orders)
    assert renamed.columns == ["id", "total", "country"]
    for plugin in (
        SelectColumns({"columns": ["amout"]}),
        DropColumns({"columns": ["amout"]}),
        RenameColumns({"mapping": {"amout": "x"}}),
    ):
        with pytest.raises(PluginError) as err:
            plugin.transform(ctx, orders)
        assert str(err.value) == MISSING


def test_with_columns_can_use_earlier_columns(ctx, orders):
    out = run(
        WithColumns({"columns": {"eur": "amount * 2", "big": "eur > 30", "id": "id + 100"}}), ctx, orders
    )
    assert out["eur"].to_list() == [10.0, 40.0, 25.0, None, 80.0]
    assert out["big"].to_list() == [False, True, False, None, True]
    assert out["id"].to_list() == [101, 102, 103, 104, 105]
    with pytest.raises(PluginError) as err:
        WithColumns({"columns": {"x": "amout * 2"}}).transform(ctx, orders)
    assert str(err.value) == MISSING


def test_cast_columns(ctx):
    data = pl.DataFrame(
        {"n": ["1", "2"], "d": ["2024-01-02", "2024-02-03"], "t": ["2024-01-02 10:00:00"] * 2}
    )
    out = run(CastColumns({"types": {"n": "int", "d": "date", "t": "datetime"}}), ctx, data)
    assert out.schema == pl.Schema({"n": pl.Int64, "d": pl.Date, "t": pl.Datetime("us")})
    assert run(CastColumns({"types": {"n": "decimal(10,2)"}}), ctx, data)["n"].dtype == pl.Decimal(10, 2)
    with pytest.raises(PluginError, match="^unknown type 'integr'; use one of: int,"):
        CastColumns({"types": {"n": "integr"}}).transform(ctx, data)
    with pytest.raises(PluginError, match="conversion from `str` to `i64` failed"):
        CastColumns({"types": {"n": "int"}}).transform(ctx, pl.DataFrame({"n": ["1", "x"]}))


def test_aggregate_by_country(ctx, orders):
    aggs = {
        "total": "sum(amount)",
        "orders": "count(id)",
        "rows": "count(*)",
        "avg": "mean(amount)",
        "biggest": "max(amount)",
        "ids": "n_unique(id)",
        "amount": "min",
    }
    out = run(Aggregate({"by": ["country"], "aggs": aggs}), ctx, orders).sort("country")
    assert out.columns == ["country", *aggs]
    assert out.row(0, named=True) == {
        "country": "DE",
        "total": 60.0,
        "orders": 2,
        "rows": 2,
        "avg": 30.0,
        "biggest": 40.0,
        "ids": 2,
        "amount": 20.0,
    }
    assert out.filter(pl.col("country") == "ES")["orders"][0] == 1


def test_aggregate_whole_table_and_sql_aggregates(ctx, orders):
    out = run(Aggregate({"aggs": {"total": "sum(amount * 2)", "n": "count(distinct country)"}}), ctx, orders)
    assert out.to_dicts() == [{"total": 155.0, "n": 3}]


def test_aggregate_errors(ctx, orders):
    with pytest.raises(PluginError) as err:
        Aggregate({"by": ["country"], "aggs": {"t": "sum(amout)"}}).transform(ctx, orders)
    assert str(err.value) == MISSING
    with pytest.raises(PluginError) as err:
        Aggregate({"by": ["contry"], "aggs": {"t": "sum(amount)"}}).transform(ctx, orders)
    assert str(err.value) == "column 'contry' not found; available columns: id, amount, country"


def test_sort_dedupe_fill(ctx, orders):
    assert run(SortRows({"by": "amount", "descending": True}), ctx, orders)["id"].to_list()[:2] == [5, 2]
    assert run(SortRows({"by": ["country", "id"], "descending": [False, True]}), ctx, orders)[
        "id"
    ].to_list() == [
        5,
        2,
        4,
        3,
        1,
    ]
    assert run(Deduplicate({"subset": ["country"]}), ctx, orders)["id"].to_list() == [1, 2, 4]
    assert run(Deduplicate({"subset": ["country"], "keep": "last"}), ctx, orders)["id"].to_list() == [3, 4, 5]
    assert run(Deduplicate({}), ctx, pl.concat([ORDERS, ORDERS])).height == 5
    filled = run(FillNull({"values": {"amount": 0}}), ctx, orders)
    assert filled["amount"].to_list() == [5.0, 20.0, 12.5, 0.0, 40.0]
    with pytest.raises(PluginError, match="descending has 1 flags for 2 sort columns"):
        SortRows({"by": ["id", "amount"], "descending": [True]}).transform(ctx, orders)


def test_sql_transform_over_data(ctx, orders):
    query = "SELECT country, sum(amount) AS total FROM data GROUP BY country ORDER BY total DESC NULLS LAST"
    out = run(SqlTransform({"query": query}), ctx, orders)
    assert out.to_dicts()[0] == {"country": "DE", "total": 60.0}
    with pytest.raises(PluginError) as err:
        SqlTransform({"query": "SELECT amout FROM data"}).transform(ctx, orders)
    assert str(err.value) == MISSING
    with pytest.raises(PluginError, match="^query: "):
        SqlTransform({"query": "SELECT * FROM orders"}).transform(ctx, orders)
