"""The plugin contract: what a plugin author subclasses, and the context a step receives.

A plugin is a class with a ``name``, a ``kind``, a one-line ``description``, a pydantic ``Args`` model and
one call: async for extract / load / pre / post, sync for merge / transform / transform_at_load.
``self.args`` is the validated ``Args`` instance.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.config import JsonDict

from orchestrator.egress import EgressPolicy
from orchestrator.phases import PluginKind as PluginKind  # part of the plugin contract

if TYPE_CHECKING:
    import polars as pl

    #: What flows between steps: an eager table, or a lazy one where the plugin can stream.
    Frame = pl.DataFrame | pl.LazyFrame


def __getattr__(name: str) -> Any:
    # ``Frame`` at run time (``from orchestrator.plugins import Frame``): Polars is imported only when a
    # module asks for it, so the engine, the CLI and the registry start without it.
    if name == "Frame":
        import polars as pl

        frame = globals()["Frame"] = pl.DataFrame | pl.LazyFrame
        return frame
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``json_schema_extra`` of an ``Args`` field that may hold ``${{ secrets.X }}`` (a DSN, a header, a token)
SECRET_FIELD: JsonDict = {"secret": True}
#: ``json_schema_extra`` of an ``Args`` field naming columns of the step's input (a name or a list of names):
#: the editor offers the input's columns once a preview or a run knows them, validation flags a name the
#: input does not have
COLUMN_NAMES: JsonDict = {"input_columns": "names"}
#: ... of a mapping whose keys are columns of the step's input (rename, cast, fill nulls)
COLUMN_KEYS: JsonDict = {"input_columns": "keys"}


@functools.cache
def secret_fields(args_model: type[BaseModel]) -> frozenset[str]:
    """The fields of a plugin's ``Args`` that accept secrets: those marked with ``SECRET_FIELD``."""
    fields = set()
    for name, info in args_model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("secret") is True:
            fields.add(info.alias or name)
    return frozenset(fields)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PluginError(Exception):
    """A failure a user can act on; the engine adds the pipeline, phase, step and plugin around it."""


@dataclass
class StepContext:
    """What a running step may use: who it is, where to log and report progress, its secrets and files."""

    pipeline: str
    phase: str
    step_id: str
    plugin: str
    logger: logging.Logger
    data_root: Path = field(default_factory=Path.cwd)
    secrets: Mapping[str, str] = field(default_factory=dict)
    on_progress: Callable[[int, int | None], None] = field(default=lambda rows, total: None, repr=False)
    #: where the step may connect (HTTP hosts, database servers)
    network: EgressPolicy = field(default_factory=EgressPolicy.open)
    #: a preview's limit: an extract step should read at most this many rows, pushing the limit down to
    #: its source where it can (``LIMIT`` in SQL, ``n_rows`` for files, one page for HTTP); None: all rows.
    #: The engine cuts what an extract step returns to the limit either way.
    row_limit: int | None = None

    def progress(self, rows: int, total: int | None = None) -> None:
        """Report rows handled so far (and the total when known): becomes a progress event."""
        self.on_progress(rows, total)


class Plugin:
    """Base of every plugin. Subclass one of the kind-specific bases below, not this one."""

    name: ClassVar[str]
    kind: ClassVar[PluginKind]
    description: ClassVar[str] = ""
    Args: ClassVar[type[BaseModel]] = NoArgs

    def __init__(self, args: BaseModel | Mapping[str, Any] | None = None) -> None:
        if args is None or isinstance(args, Mapping):
            args = self.Args.model_validate(dict(args or {}))
        self.args: Any = args

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class ExtractPlugin(Plugin):
    kind = PluginKind.EXTRACT

    async def extract(self, ctx: StepContext) -> Frame:
        raise NotImplementedError


class MergePlugin(Plugin):
    kind = PluginKind.MERGE

    def merge(self, ctx: StepContext, frames: dict[str, Frame]) -> Frame:
        """Combine the extract outputs, given as ``{step_id: frame}`` in step order."""
        raise NotImplementedError


class TransformPlugin(Plugin):
    kind = PluginKind.TRANSFORM

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        raise NotImplementedError


class LoadPlugin(Plugin):
    kind = PluginKind.LOAD

    async def load(self, ctx: StepContext, data: Frame) -> None:
        raise NotImplementedError


class TransformAtLoadPlugin(Plugin):
    kind = PluginKind.TRANSFORM_AT_LOAD

    def execute(self, ctx: StepContext) -> None:
        raise NotImplementedError


class PrePlugin(Plugin):
    """Runs before the steps of an extract or load phase."""

    kind = PluginKind.PRE

    async def run(self, ctx: StepContext) -> None:
        raise NotImplementedError


class PostPlugin(Plugin):
    """Runs after the steps of an extract or load phase, with the phase's table."""

    kind = PluginKind.POST

    async def run(self, ctx: StepContext, data: Frame | None) -> None:
        raise NotImplementedError


class SecretProvider(Plugin):
    """Resolves a ``${{ secrets.X }}`` reference at run time (never at load or export)."""

    kind = PluginKind.SECRET

    def resolve(self) -> str:
        raise NotImplementedError


#: kind -> (base class, the method a plugin must define)
CALLS: dict[PluginKind, tuple[type[Plugin], str]] = {
    PluginKind.EXTRACT: (ExtractPlugin, "extract"),
    PluginKind.MERGE: (MergePlugin, "merge"),
    PluginKind.TRANSFORM: (TransformPlugin, "transform"),
    PluginKind.LOAD: (LoadPlugin, "load"),
    PluginKind.TRANSFORM_AT_LOAD: (TransformAtLoadPlugin, "execute"),
    PluginKind.PRE: (PrePlugin, "run"),
    PluginKind.POST: (PostPlugin, "run"),
    PluginKind.SECRET: (SecretProvider, "resolve"),
}


_frame_types: tuple[type[pl.DataFrame] | type[pl.LazyFrame], ...] = ()


def frame_types() -> tuple[type[pl.DataFrame] | type[pl.LazyFrame], ...]:
    """(DataFrame, LazyFrame), or () while Polars is not imported: then no value can be a frame, and
    checking for one need not import it."""
    global _frame_types
    if not _frame_types and (polars := sys.modules.get("polars")) is not None:
        _frame_types = (polars.DataFrame, polars.LazyFrame)
    return _frame_types


def row_count(frame: Frame | None) -> int | None:
    """Rows of an eager frame; None for a lazy one (counting would execute it)."""
    polars = sys.modules.get("polars")
    return frame.height if polars is not None and isinstance(frame, polars.DataFrame) else None
