"""generate_rows: SQL expressions over a row index, reproducible random values."""

from __future__ import annotations

import polars as pl
import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.generate import GenerateRows


async def test_it_generates_rows_from_sql_expressions(ctx, progress):
    plugin = GenerateRows(
        {
            "rows": 5,
            "columns": {
                "id": "row_number",
                "idx": "i",
                "label": "'order-' || CAST(row_number AS VARCHAR)",
                "double_id": "id * 2",
            },
        }
    )
    frame = await plugin.extract(ctx)
    assert frame.columns == ["id", "idx", "label", "double_id"]
    assert frame["id"].to_list() == [1, 2, 3, 4, 5]
    assert frame["idx"].to_list() == [0, 1, 2, 3, 4]
    assert frame["label"][0] == "order-1"
    assert frame["double_id"].to_list() == [2, 4, 6, 8, 10]
    assert progress.calls[-1] == (5, 5)


async def test_random_values_are_reproducible_with_a_seed_and_in_range(ctx):
    args = {
        "rows": 2000,
        "seed": 7,
        "columns": {
            "r": "random()",
            "n": "random_int(3, 5)",
            "c": "random_choice('FR', 'DE', 'it''s')",
            "r2": "random()",
        },
    }
    first = await GenerateRows(args).extract(ctx)
    second = await GenerateRows(args).extract(ctx)
    assert first.equals(second)
    assert first["r"].min() >= 0 and first["r"].max() < 1
    assert set(first["n"].unique()) == {3, 4, 5}
    assert set(first["c"].unique()) == {"FR", "DE", "it's"}
    assert first["r"].to_list() != first["r2"].to_list()  # each call draws independently
    other = await GenerateRows({**args, "seed": 8}).extract(ctx)
    assert not other.equals(first)


async def test_random_inside_a_string_literal_is_text(ctx):
    frame = await GenerateRows({"rows": 1, "columns": {"t": "'random()'"}}).extract(ctx)
    assert frame["t"][0] == "random()"


async def test_a_wrong_column_name_lists_the_available_ones(ctx):
    with pytest.raises(PluginError) as err:
        await GenerateRows({"rows": 3, "columns": {"a": "i", "b": "amout * 2"}}).extract(ctx)
    assert str(err.value) == "column 'amout' not found; available columns: i, row_number, a"


async def test_a_bad_expression_names_the_column_and_the_text(ctx):
    with pytest.raises(PluginError, match=r"column 'x' '1 \+' is not a valid SQL expression"):
        await GenerateRows({"rows": 3, "columns": {"x": "1 +"}}).extract(ctx)


async def test_zero_rows_keeps_the_columns(ctx):
    frame = await GenerateRows({"rows": 0, "columns": {"id": "row_number"}}).extract(ctx)
    assert frame.height == 0 and frame.schema == pl.Schema({"id": pl.Int64})
