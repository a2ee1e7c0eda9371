"""Built-in plugins: CSV, Parquet and JSON files inside the data root (read lazily, written atomically)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from orchestrator.plugins.base import ExtractPlugin, LoadPlugin, StepContext
from orchestrator.plugins.expressions import polars_errors, require_columns
from orchestrator.plugins.lazy import LazyModule
from orchestrator.plugins.paths import atomic_target, input_files, output_path

if TYPE_CHECKING:
    import asyncio

    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    asyncio = LazyModule("asyncio")  # the event loop is a run's, not validation's
    pl = LazyModule("polars")

_CONFIG = ConfigDict(extra="forbid", defer_build=True)
#: a file path in the data root: validation refuses one that leaves it
_PATH: JsonDict = {"format": "path"}
_PATH_HELP = "File path inside the data root; a glob (*.csv, 2024-*/orders.csv) reads every match"
_OUT_HELP = "File path inside the data root; written to a temporary file, then renamed over the target"


def _names(files: list[Path], root: Path) -> str:
    return ", ".join(str(f.relative_to(root.resolve())) for f in files[:5]) + (
        " ..." if len(files) > 5 else ""
    )


#: inputs up to this size are read at once, so a malformed file fails this step and the row count is known;
#: larger ones stay lazy and stream through the steps that can stream (filter, with_columns, the file
#: loads, sql_load), so reading overlaps loading: 0.25 s of W4's 1.9 s (48 MB of CSV into PostgreSQL)
EAGER_BYTES = 16 * 1024 * 1024


async def _scan(
    ctx: StepContext, plan: pl.LazyFrame, columns: list[str] | None, what: str, files: list[Path]
) -> Frame:
    """Resolve the plan's schema now (headers, metadata), so a bad file or column fails this step."""
    with polars_errors(what=what):
        await asyncio.to_thread(plan.collect_schema)
    if columns:
        require_columns(plan, columns)
        plan = plan.select(columns)
    if ctx.row_limit is None and sum(f.stat().st_size for f in files) > EAGER_BYTES:
        return plan
    with polars_errors(what=what):
        frame = await asyncio.to_thread(plan.collect)
    ctx.progress(frame.height, frame.height)
    return frame


class CsvExtractArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(
        description=_PATH_HELP, examples=["orders.csv", "exports/*.csv"], json_schema_extra=_PATH
    )
    delimiter: str = Field(
        default=",",
        min_length=1,
        max_length=1,
        description="Field separator, one character",
        examples=[",", ";"],
    )
    has_header: bool = Field(
        default=True,
        description="The first line holds column names (else column_1, column_2...)",
        examples=[True],
    )
    columns: list[str] | None = Field(
        default=None, description="Keep only these columns (all when empty)", examples=[["id", "amount"]]
    )
    parse_dates: bool = Field(
        default=False,
        description="Turn text that looks like dates and times into date / datetime columns (slower to read)",
        examples=[True],
    )


class CsvExtract(ExtractPlugin):
    name = "csv_extract"
    description = "Read CSV files (a path or a glob inside the data root); large inputs are streamed."
    Args = CsvExtractArgs

    async def extract(self, ctx: StepContext) -> Frame:
        args: CsvExtractArgs = self.args
        files = input_files(ctx.data_root, args.path)
        plan = pl.scan_csv(
            files,
            separator=args.delimiter,
            has_header=args.has_header,
            infer_schema_length=10_000,
            try_parse_dates=args.parse_dates,
            n_rows=ctx.row_limit,
        )
        what = f"cannot read CSV {_names(files, ctx.data_root)}"
        if not args.has_header:  # name columns column_1, column_2... whatever the Polars version does
            with polars_errors(what=what):
                names = (await asyncio.to_thread(plan.collect_schema)).names()
            plan = plan.rename({name: f"column_{n}" for n, name in enumerate(names, start=1)})
        return await _scan(ctx, plan, args.columns, what, files)


class ParquetExtractArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(
        description=_PATH_HELP, examples=["orders.parquet", "lake/orders/*.parquet"], json_schema_extra=_PATH
    )


class ParquetExtract(ExtractPlugin):
    name = "parquet_extract"
    description = "Read Parquet files (a path or a glob inside the data root); large inputs are streamed."
    Args = ParquetExtractArgs

    async def extract(self, ctx: StepContext) -> Frame:
        files = input_files(ctx.data_root, self.args.path)
        plan = pl.scan_parquet(files, n_rows=ctx.row_limit)
        return await _scan(ctx, plan, None, f"cannot read Parquet {_names(files, ctx.data_root)}", files)


class JsonExtractArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(
        description=_PATH_HELP, examples=["events.json", "logs/*.ndjson"], json_schema_extra=_PATH
    )
    lines: bool = Field(
        default=False,
        description="One JSON object per line (NDJSON) instead of one JSON array of objects",
        examples=[False],
    )


class JsonExtract(ExtractPlugin):
    name = "json_extract"
    description = "Read JSON files: an array of objects, or one object per line (NDJSON)."
    Args = JsonExtractArgs

    async def extract(self, ctx: StepContext) -> Frame:
        args: JsonExtractArgs = self.args
        files = input_files(ctx.data_root, args.path)
        what = f"cannot read JSON {_names(files, ctx.data_root)}"
        if args.lines:
            plan = pl.scan_ndjson(files, infer_schema_length=10_000, n_rows=ctx.row_limit)
            return await _scan(ctx, plan, None, what, files)
        with polars_errors(what=what):
            frames = await asyncio.to_thread(
                lambda: [pl.read_json(f, infer_schema_length=None) for f in files]
            )
            frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        if ctx.row_limit is not None:  # an array is parsed whole: the limit applies after
            frame = frame.head(ctx.row_limit)
        ctx.progress(frame.height, frame.height)
        return frame


async def _write(
    ctx: StepContext,
    data: Frame,
    path: str,
    write_eager: Callable[[pl.DataFrame, Path], object],
    sink_lazy: Callable[[pl.LazyFrame, Path], object] | None,
    what: str,
) -> None:
    """Write ``data`` to a temporary file beside the target, then rename it into place."""
    target = output_path(ctx.data_root, path)

    def run() -> int | None:
        with atomic_target(target) as tmp:
            if isinstance(data, pl.LazyFrame) and sink_lazy is not None:
                sink_lazy(data, tmp)
                return None
            frame = data.collect() if isinstance(data, pl.LazyFrame) else data
            write_eager(frame, tmp)
            return frame.height

    with polars_errors(data, what):
        rows = await asyncio.to_thread(run)
    if rows is not None:
        ctx.progress(rows, rows)
    ctx.logger.info("wrote %s", target)


class CsvLoadArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(description=_OUT_HELP, examples=["out/orders.csv"], json_schema_extra=_PATH)
    delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="Field separator, one character", examples=[","]
    )
    include_header: bool = Field(default=True, description="Write the column names first", examples=[True])


class CsvLoad(LoadPlugin):
    name = "csv_load"
    description = "Write the table to a CSV file inside the data root, atomically (temp file + rename)."
    Args = CsvLoadArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        args: CsvLoadArgs = self.args
        await _write(
            ctx,
            data,
            args.path,
            lambda df, tmp: df.write_csv(tmp, separator=args.delimiter, include_header=args.include_header),
            lambda lf, tmp: lf.sink_csv(tmp, separator=args.delimiter, include_header=args.include_header),
            f"cannot write CSV '{args.path}'",
        )


class ParquetLoadArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(description=_OUT_HELP, examples=["out/orders.parquet"], json_schema_extra=_PATH)
    compression: Literal["zstd", "snappy", "lz4", "gzip", "brotli", "uncompressed"] = Field(
        default="zstd",
        description="Compression codec: zstd, snappy, lz4, gzip, brotli or uncompressed",
        examples=["zstd"],
    )


class ParquetLoad(LoadPlugin):
    name = "parquet_load"
    description = "Write the table to a Parquet file inside the data root, streamed and atomic."
    Args = ParquetLoadArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        args: ParquetLoadArgs = self.args
        await _write(
            ctx,
            data,
            args.path,
            lambda df, tmp: df.write_parquet(tmp, compression=args.compression),
            lambda lf, tmp: lf.sink_parquet(tmp, compression=args.compression),
            f"cannot write Parquet '{args.path}'",
        )


class JsonLoadArgs(BaseModel):
    model_config = _CONFIG

    path: str = Field(description=_OUT_HELP, examples=["out/orders.json"], json_schema_extra=_PATH)
    lines: bool = Field(
        default=False,
        description="One JSON object per line (NDJSON) instead of one JSON array of objects",
        examples=[False],
    )


class JsonLoad(LoadPlugin):
    name = "json_load"
    description = "Write the table to a JSON file (array or NDJSON) inside the data root, atomically."
    Args = JsonLoadArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        args: JsonLoadArgs = self.args
        if args.lines:
            eager, lazy = (lambda df, tmp: df.write_ndjson(tmp)), (lambda lf, tmp: lf.sink_ndjson(tmp))
        else:
            eager, lazy = (lambda df, tmp: df.write_json(tmp)), None
        await _write(ctx, data, args.path, eager, lazy, f"cannot write JSON '{args.path}'")
