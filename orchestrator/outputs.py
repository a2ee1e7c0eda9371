"""What a run keeps of its steps' outputs: a summary of each table for people (its columns and types, row
and null counts, a sample of its first rows, size-capped), and, when asked, the whole table as Parquet
at each boundary (after each extract step and the merge, after each transform step: the last one is what
load receives), with a manifest per pipeline that a later run resumes from (``orchestrator.resume``).

Summaries go to a callback (``KeepOutputs.on_output``), never into the events stream: the web app's run
process sends them to its worker, which stores them with the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.plugins.lazy import LazyModule

if TYPE_CHECKING:
    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    pl = LazyModule("polars")

Compression = Literal["lz4", "uncompressed", "snappy", "gzip", "brotli", "zstd"]
#: the version of the manifest's layout
MANIFEST_FORMAT = 1
MANIFEST = "manifest.json"
#: kept files up to this size are read back at once (as the extract plugins do), larger ones lazily
EAGER_BYTES = 16 * 1024 * 1024
#: integers beyond this lose precision in a browser: shown as text
_SAFE_INT = 2**53


@dataclass(frozen=True)
class KeepOutputs:
    """What a run keeps of its steps' outputs (``run_project(outputs=...)``).

    ``directory``: where each pipeline's Parquet files and manifest go (``<directory>/<pipeline>/``), None to
    keep summaries only; ``on_output``: receives each step's summary, on the run's loop thread.
    """

    directory: Path | None = None
    on_output: Callable[[StepOutput], None] | None = None
    sample_rows: int = 100
    #: the most a summary's sample may take, as JSON: rows after it are left out
    sample_bytes: int = 64 * 1024
    #: the most characters of one value in a sample (longer text is cut, with an ellipsis)
    value_chars: int = 200
    compression: Compression = "lz4"


@dataclass(frozen=True)
class StepOutput:
    """One step's output as people see it: columns and types, counts (None when the table was streamed
    and not kept: counting would read it all), the first rows (values cut to fit, nulls as None)."""

    pipeline: str
    phase: str
    step: str
    columns: list[tuple[str, str]]
    rows: int | None = None
    nulls: dict[str, int] | None = None
    sample: list[list[Any]] = field(default_factory=list)
    #: the sample lost rows or characters to its caps
    truncated: bool = False
    #: the Parquet file holding the whole table, relative to the outputs directory, when kept
    kept: str | None = None
    #: the step was not run: its output is an earlier run's
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [list(c) for c in self.columns]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepOutput:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["columns"] = [(str(n), str(t)) for n, t in fields.get("columns") or []]
        return cls(**fields)


def type_name(dtype: Any) -> str:
    """A column type as people read it: ``Int64``, ``String``, ``Datetime[us, UTC]``, ``List[String]``."""
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime[{dtype.time_unit}{zone}]"
    if isinstance(dtype, pl.Duration):
        return f"Duration[{dtype.time_unit}]"
    if isinstance(dtype, pl.List | pl.Array):
        return f"{type(dtype).__name__}[{type_name(dtype.inner)}]"
    if isinstance(dtype, pl.Decimal):
        return f"Decimal[{dtype.precision}, {dtype.scale}]"
    return str(dtype)


def display_value(value: Any, chars: int) -> tuple[Any, bool]:
    """A JSON value showing ``value`` (text cut to ``chars``), and whether it was cut."""
    if value is None or isinstance(value, bool):
        return value, False
    if isinstance(value, int):
        return (value, False) if abs(value) < _SAFE_INT else (str(value), False)
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (str(value), False)
    if isinstance(value, str):
        text = value
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    elif isinstance(value, bytes | bytearray):
        text = f"<{len(value)} bytes>"
    elif isinstance(value, list | dict | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False)
    elif isinstance(value, decimal.Decimal | dt.timedelta):
        text = str(value)
    else:
        text = str(value)
    if len(text) > chars:
        return text[: max(chars - 1, 0)] + "\u2026", True
    return text, False


def sample_rows(frame: pl.DataFrame, options: KeepOutputs) -> tuple[list[list[Any]], bool]:
    """The first rows of ``frame`` as JSON values, within the options' caps; whether anything was cut."""
    rows: list[list[Any]] = []
    cut = frame.height > options.sample_rows
    size = 2
    for raw in frame.head(options.sample_rows).iter_rows():
        row = []
        for value in raw:
            shown, was_cut = display_value(value, options.value_chars)
            cut = cut or was_cut
            row.append(shown)
        size += len(json.dumps(row, default=str, ensure_ascii=False)) + 1
        if size > options.sample_bytes:
            return rows, True
        rows.append(row)
    return rows, cut


def summarize(
    frame: Frame, options: KeepOutputs, *, place: tuple[str, str, str], kept: str | None = None
) -> StepOutput:
    """The summary of ``frame`` (a lazy one is sampled from its first rows; its counts stay unknown)."""
    pipeline, phase, step = place
    if isinstance(frame, pl.LazyFrame):
        schema = frame.collect_schema()
        head = frame.head(options.sample_rows).collect()
        rows: int | None = None
        nulls: dict[str, int] | None = None
    else:
        schema, head, rows = frame.schema, frame.head(options.sample_rows), frame.height
        counts = frame.null_count()
        nulls = {name: int(counts[name][0]) for name in counts.columns}
    sample, truncated = sample_rows(head, options)
    return StepOutput(
        pipeline=pipeline,
        phase=phase,
        step=step,
        columns=[(name, type_name(dtype)) for name, dtype in schema.items()],
        rows=rows,
        nulls=nulls,
        sample=sample,
        truncated=truncated or (rows is not None and rows > len(sample)),
        kept=kept,
    )


def summarize_file(
    path: Path, options: KeepOutputs, *, place: tuple[str, str, str], kept: str, reused: bool = False
) -> StepOutput:
    """The summary of a kept Parquet file: counts from the file, the sample from its first rows."""
    scan = pl.scan_parquet(path)
    schema = scan.collect_schema()
    rows_name = "\x00rows"  # no column is named so
    counts, head = pl.collect_all(
        [scan.select(pl.len().alias(rows_name), pl.all().null_count()), scan.head(options.sample_rows)]
    )
    rows = int(counts[rows_name][0])
    counts = counts.drop(rows_name)
    sample, truncated = sample_rows(head, options)
    pipeline, phase, step = place
    return StepOutput(
        pipeline=pipeline,
        phase=phase,
        step=step,
        columns=[(name, type_name(dtype)) for name, dtype in schema.items()],
        rows=rows,
        nulls={name: int(counts[name][0]) for name in counts.columns},
        sample=sample,
        truncated=truncated or rows > len(sample),
        kept=kept,
        reused=reused,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(key: str) -> str:
    """The Parquet file name of a step's kept output (``transform.big_orders.parquet``)."""
    safe = _UNSAFE.sub("_", key)
    return f"{safe}.parquet"


def pipeline_folder(directory: Path, pipeline: str) -> Path:
    """Where one pipeline's kept outputs and manifest live."""
    safe = _UNSAFE.sub("_", pipeline) or "_"
    return directory / safe


def write_frame(frame: Frame, target: Path, compression: Compression) -> Frame:
    """Write ``frame`` to ``target`` (a temporary file renamed into place); the table the next step reads:
    ``frame`` itself when eager, else the written file, scanned (the plan is executed once, streaming)."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        # no column statistics: nothing reads them, and computing them is a tenth of the write
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, compression=compression, statistics=False)
        else:
            frame.write_parquet(tmp, compression=compression, statistics=False)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return pl.scan_parquet(target) if isinstance(frame, pl.LazyFrame) else frame


def read_frame(path: Path) -> Frame:
    """A kept output, to hand to the step after it: read at once when small, scanned otherwise."""
    if path.stat().st_size <= EAGER_BYTES:
        return pl.read_parquet(path)
    return pl.scan_parquet(path)


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold ``source``'s content (a hard link when the filesystem allows it)."""
    if source.resolve() == target.resolve():
        return
    tmp = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        import shutil

        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """A pipeline folder's manifest, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


class Manifest:
    """One pipeline's manifest as the run writes it (after every step: a crash keeps what was done).

    ``steps``: key -> ``{"own", "chain", "status", "file", "rows"}``; ``order``: the keys in run order.
    """

    def __init__(self, folder: Path, pipeline: str, order: list[str]) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "pipeline": pipeline,
            "status": "running",
            "order": order,
            "steps": {},
        }

    def record(self, key: str, entry: dict[str, Any]) -> None:
        with self.lock:
            self.data["steps"][key] = entry
            self._write()

    def finish(self, status: str) -> None:
        with self.lock:
            self.data["status"] = status
            self._write()

    def _write(self) -> None:
        tmp = self.folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.folder / MANIFEST)


def kept_files(directory: Path) -> Iterator[Path]:
    """Every file under a run's outputs directory (for sizes and clean-up)."""
    for root, _, files in os.walk(directory):
        for name in files:
            yield Path(root) / name
