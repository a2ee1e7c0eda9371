"""File plugins: CSV / Parquet / JSON inside the data root, globs, atomic writes, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from orchestrator.plugins import PluginError, files
from orchestrator.plugins.files import (
    CsvExtract,
    CsvLoad,
    JsonExtract,
    JsonLoad,
    ParquetExtract,
    ParquetLoad,
)


def eager(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


ORDERS = "id,amount,country\n1,5.5,FR\n2,20.0,DE\n3,12.25,FR\n"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_csv_extract_reads_a_small_file_at_once(ctx, data_root, progress):
    write(data_root, "orders.csv", ORDERS)
    df = await CsvExtract({"path": "orders.csv"}).extract(ctx)
    assert isinstance(df, pl.DataFrame)
    assert progress.calls[-1] == (3, 3)
    assert df.columns == ["id", "amount", "country"]
    assert df["amount"].to_list() == [5.5, 20.0, 12.25]


async def test_csv_extract_reads_every_file_of_a_glob(ctx, data_root):
    write(data_root, "in/a.csv", "id,x\n1,a\n")
    write(data_root, "in/b.csv", "id,x\n2,b\n")
    write(data_root, "in/c.txt", "ignored")
    frame = eager(await CsvExtract({"path": "in/*.csv"}).extract(ctx))
    assert frame["id"].to_list() == [1, 2]


async def test_csv_extract_delimiter_header_and_columns(ctx, data_root):
    write(data_root, "semi.csv", "1;a;x\n2;b;y\n")
    frame = await CsvExtract(
        {"path": "semi.csv", "delimiter": ";", "has_header": False, "columns": ["column_1", "column_3"]}
    ).extract(ctx)
    assert eager(frame).to_dict(as_series=False) == {"column_1": [1, 2], "column_3": ["x", "y"]}


async def test_csv_extract_unknown_column_lists_the_available_ones(ctx, data_root):
    write(data_root, "orders.csv", ORDERS)
    with pytest.raises(PluginError) as err:
        await CsvExtract({"path": "orders.csv", "columns": ["amout"]}).extract(ctx)
    assert str(err.value) == "column 'amout' not found; available columns: id, amount, country"


async def test_missing_file_says_where_it_looked(ctx, data_root):
    with pytest.raises(PluginError) as err:
        await CsvExtract({"path": "nope.csv"}).extract(ctx)
    root = data_root.resolve()
    assert (
        str(err.value)
        == f"file 'nope.csv' not found in the data root {root} (looked for {root / 'nope.csv'})"
    )


async def test_a_glob_matching_nothing_is_an_error(ctx, data_root):
    with pytest.raises(PluginError, match=r"no file matches 'x/\*\.csv' in the data root"):
        await CsvExtract({"path": "x/*.csv"}).extract(ctx)


@pytest.mark.parametrize("path", ["../secret.csv", "in/../../secret.csv"])
async def test_dotdot_paths_are_refused(ctx, data_root, path):
    write(data_root.parent, "secret.csv", "a\n1\n")
    with pytest.raises(PluginError, match=r"contains '\.\.'; give a path inside the data root"):
        await CsvExtract({"path": path}).extract(ctx)


async def test_absolute_paths_outside_the_root_are_refused_and_inside_are_allowed(ctx, data_root):
    outside = write(data_root.parent, "secret.csv", "a\n1\n")
    with pytest.raises(PluginError, match="is outside the data root"):
        await CsvExtract({"path": str(outside)}).extract(ctx)
    inside = write(data_root, "ok.csv", "a\n1\n")
    assert eager(await CsvExtract({"path": str(inside)}).extract(ctx))["a"].to_list() == [1]


async def test_symlinks_escaping_the_root_are_refused(ctx, data_root):
    write(data_root.parent, "secret.csv", "a\n1\n")
    os.symlink(data_root.parent / "secret.csv", data_root / "link.csv")
    os.symlink(data_root.parent, data_root / "up")
    with pytest.raises(PluginError, match="outside the data root"):
        await CsvExtract({"path": "link.csv"}).extract(ctx)
    with pytest.raises(PluginError, match="outside the data root"):
        await CsvExtract({"path": "up/*.csv"}).extract(ctx)
    with pytest.raises(PluginError, match="outside the data root"):
        await CsvLoad({"path": "up/out.csv"}).load(ctx, pl.DataFrame({"a": [1]}))


async def test_malformed_csv_names_the_file(ctx, data_root):
    write(data_root, "bad.csv", "a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(PluginError, match="^cannot read CSV bad.csv: found more fields than defined"):
        await CsvExtract({"path": "bad.csv"}).extract(ctx)


async def test_large_inputs_stay_lazy(ctx, data_root, monkeypatch):
    monkeypatch.setattr(files, "EAGER_BYTES", 10)
    write(data_root, "orders.csv", ORDERS)
    frame = await CsvExtract({"path": "orders.csv"}).extract(ctx)
    assert isinstance(frame, pl.LazyFrame)
    assert frame.collect().height == 3


async def test_parquet_round_trip_lazy_and_eager(ctx, data_root, progress):
    df = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})
    await ParquetLoad({"path": "out/eager.parquet"}).load(ctx, df)
    assert progress.calls[-1] == (3, 3)
    await ParquetLoad({"path": "out/lazy.parquet"}).load(ctx, df.lazy().filter(pl.col("id") > 1))
    one = eager(await ParquetExtract({"path": "out/eager.parquet"}).extract(ctx))
    both = eager(await ParquetExtract({"path": "out/*.parquet"}).extract(ctx))
    assert one.equals(df)
    assert both.height == 5  # eager.parquet (3) + lazy.parquet (2), in name order


async def test_json_array_and_lines_round_trip(ctx, data_root):
    df = pl.DataFrame({"id": [1, 2], "tags": [["a"], []], "name": ["x", None]})
    await JsonLoad({"path": "a.json"}).load(ctx, df)
    await JsonLoad({"path": "l.ndjson", "lines": True}).load(ctx, df.lazy())
    assert (await JsonExtract({"path": "a.json"}).extract(ctx)).equals(df)
    assert eager(await JsonExtract({"path": "l.ndjson", "lines": True}).extract(ctx)).equals(df)


async def test_malformed_json_is_a_clear_error(ctx, data_root):
    write(data_root, "bad.json", '[{"a": 1}, {"a": ')
    with pytest.raises(PluginError, match="cannot read JSON bad.json"):
        await JsonExtract({"path": "bad.json"}).extract(ctx)


async def test_csv_load_writes_atomically_and_keeps_the_old_file_on_failure(ctx, data_root):
    target = write(data_root, "out/orders.csv", "old contents\n")
    await CsvLoad({"path": "out/orders.csv"}).load(ctx, pl.DataFrame({"a": [1, 2]}))
    assert target.read_text() == "a\n1\n2\n"
    failing = pl.LazyFrame({"a": ["x"]}).select(pl.col("a").cast(pl.Int64, strict=True))
    with pytest.raises(PluginError, match="cannot write CSV 'out/orders.csv'"):
        await CsvLoad({"path": "out/orders.csv"}).load(ctx, failing)
    assert target.read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["orders.csv"]  # no temp file left


async def test_csv_load_options_and_new_directories(ctx, data_root):
    await CsvLoad({"path": "deep/er/x.csv", "delimiter": ";", "include_header": False}).load(
        ctx, pl.DataFrame({"a": [1], "b": ["z"]})
    )
    assert (data_root / "deep/er/x.csv").read_text() == "1;z\n"


async def test_load_paths_with_globs_or_dotdot_are_refused(ctx):
    for path, message in [("out/*.csv", "glob character"), ("../x.csv", "contains '..'")]:
        with pytest.raises(PluginError, match=message):
            await CsvLoad({"path": path}).load(ctx, pl.DataFrame({"a": [1]}))


async def test_dates_stay_text_unless_parse_dates(ctx, data_root):
    write(data_root, "d.csv", "day,ts\n2024-01-02,2024-01-02T10:00:00\n")
    text = await CsvExtract({"path": "d.csv"}).extract(ctx)
    assert text.schema == pl.Schema({"day": pl.String, "ts": pl.String})
    parsed = await CsvExtract({"path": "d.csv", "parse_dates": True}).extract(ctx)
    assert parsed.schema == pl.Schema({"day": pl.Date, "ts": pl.Datetime("us")})
