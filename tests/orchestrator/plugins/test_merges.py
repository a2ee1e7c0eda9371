"""Merge plugins: joins in step order and concatenation."""

from __future__ import annotations

import polars as pl
import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.merges import ConcatMerge, JoinMerge

ORDERS = pl.DataFrame({"order_id": [1, 2, 3], "customer_id": [10, 20, 30], "amount": [5.0, 7.0, 9.0]})
CUSTOMERS = pl.DataFrame({"customer_id": [10, 20, 40], "name": ["ann", "bob", "dan"]})


def ids(frame):
    frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return sorted(x for x in frame["customer_id"].to_list() if x is not None)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("inner", [10, 20]),
        ("left", [10, 20, 30]),
        ("full", [10, 20, 30, 40]),
        ("semi", [10, 20]),
        ("anti", [30]),
    ],
)
def test_join_kinds(ctx, how, expected):
    out = JoinMerge({"on": "customer_id", "how": how}).merge(ctx, {"orders": ORDERS, "customers": CUSTOMERS})
    assert ids(out) == expected


def test_join_of_three_in_step_order_and_lazy_inputs(ctx):
    regions = pl.LazyFrame({"customer_id": [10, 20], "name": ["north", "south"]})
    out = JoinMerge({"on": ["customer_id"]}).merge(
        ctx, {"orders": ORDERS, "customers": CUSTOMERS.lazy(), "regions": regions}
    )
    assert isinstance(out, pl.LazyFrame)
    df = out.collect()
    assert df.columns == ["order_id", "customer_id", "amount", "name", "name_regions"]
    assert df["name_regions"].to_list() == ["north", "south"]


def test_join_key_missing_names_the_step(ctx):
    with pytest.raises(PluginError) as err:
        JoinMerge({"on": "customer_id"}).merge(
            ctx, {"orders": ORDERS, "people": CUSTOMERS.rename({"customer_id": "id"})}
        )
    assert (
        str(err.value)
        == "join column 'customer_id' not found in the output of step 'people'; its columns: id, name"
    )


def test_concat_vertical_and_diagonal(ctx):
    a, b = pl.DataFrame({"x": [1]}), pl.DataFrame({"x": [2]})
    assert ConcatMerge({}).merge(ctx, {"a": a, "b": b})["x"].to_list() == [1, 2]
    c = pl.DataFrame({"y": ["z"]})
    with pytest.raises(PluginError, match="use how: diagonal"):
        ConcatMerge({}).merge(ctx, {"a": a, "c": c})
    out = ConcatMerge({"how": "diagonal"}).merge(ctx, {"a": a, "c": c.lazy()})
    assert out.collect().to_dict(as_series=False) == {"x": [1, None], "y": [None, "z"]}
