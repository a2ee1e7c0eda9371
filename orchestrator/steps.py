"""What a step needs from its run: the shared environment, its context, its plugin with resolved and
validated args, and the words of its failure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import ValidationError

from orchestrator.egress import EgressPolicy
from orchestrator.events import StepProgress
from orchestrator.logs import EventBus, step_logger
from orchestrator.plugins.base import (
    Frame,
    Plugin,
    PluginError,
    PluginKind,
    StepContext,
    row_count,
    secret_fields,
)
from orchestrator.plugins.registry import PluginRegistry, UnknownPlugin
from orchestrator.resolve import Redactor, ResolveError, resolve_args
from orchestrator.spec import StepSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator.resolve import SecretResolver


@dataclass
class RunEnv:
    """What every pipeline of one run shares."""

    bus: EventBus
    registry: PluginRegistry
    variables: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: SecretResolver | None = None
    #: the declared secret names (what ``ctx.secrets`` lists)
    secret_names: tuple[str, ...] = ()
    data_root: Path = field(default_factory=Path.cwd)
    redactor: Redactor = field(default_factory=Redactor)
    network: EgressPolicy = field(default_factory=EgressPolicy.open)

    def redact(self, text: str) -> str:
        """``text`` without any secret value resolved so far in this run."""
        return self.redactor.redact(text)

    @cached_property
    def secrets_view(self) -> Mapping[str, str]:
        """What steps see as ``ctx.secrets``."""
        return SecretsView(self)


class EngineStepContext(StepContext):
    """The engine's StepContext: its logger is built on first use (most steps never log, and a logger
    is not free) and progress goes straight to the bus. Built for speed: it runs once per step."""

    _logger: logging.Logger | None
    _bus: EventBus

    def __init__(self, bus: EventBus, pipeline: str, phase: str, step: StepSpec, env: RunEnv) -> None:
        # Not the dataclass __init__: one dict update is several times cheaper, and W1 measures this.
        self.__dict__.update(
            pipeline=pipeline,
            phase=phase,
            step_id=step.id,
            plugin=step.plugin,
            data_root=env.data_root,
            secrets=env.secrets_view,
            network=env.network,
            _logger=None,
            _bus=bus,
        )

    @property
    def logger(self) -> logging.Logger:
        if self._logger is None:
            self._logger = step_logger(self._bus, self.pipeline, self.phase, self.step_id)
        return self._logger

    @logger.setter
    def logger(self, value: logging.Logger | None) -> None:
        self._logger = value

    def on_progress(self, rows: int, total: int | None) -> None:
        self._bus.emit(
            StepProgress(pipeline=self.pipeline, phase=self.phase, step=self.step_id, rows=rows, total=total)
        )


class SecretsView(Mapping[str, str]):
    """``ctx.secrets``: a secret is resolved (and remembered for redaction) only when a step reads it."""

    def __init__(self, env: RunEnv) -> None:
        self._env = env

    def __getitem__(self, name: str) -> str:
        if self._env.secrets is None:
            raise KeyError(name)
        try:
            value = self._env.secrets(name, None)
        except ResolveError as exc:
            raise KeyError(name) from exc
        self._env.redactor.add(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._env.secret_names)

    def __len__(self) -> int:
        return len(self._env.secret_names)


class StepFailed(Exception):
    """A step failed for good; the message names pipeline, phase, step and plugin, secrets redacted."""


class SetupError(Exception):
    """The step could not start (unknown plugin, wrong kind, bad args): retrying cannot help."""


class StepTimeout(Exception):
    """The step ran longer than its ``timeout``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s")


def input_rows(data: Any) -> int | None:
    """Rows of a step's input (a frame, or the merge's ``{step_id: frame}``); None when any is lazy."""
    if isinstance(data, dict):
        counts = [row_count(f) for f in data.values()]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return row_count(data) if isinstance(data, pl.DataFrame | pl.LazyFrame) else None


def check_frame(result: Any) -> Frame:
    """``result`` when it is a table; a PluginError naming what the step returned instead."""
    if not isinstance(result, pl.DataFrame | pl.LazyFrame):
        raise PluginError(f"returned {type(result).__name__}; expected a polars DataFrame or LazyFrame")
    return result


def describe(exc: BaseException) -> str:
    """The cause as a user reads it: our own errors as they are, others with their type."""
    if isinstance(exc, PluginError | ResolveError | SetupError | StepTimeout):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def prepare_plugin(env: RunEnv, step: StepSpec, kind: PluginKind) -> Plugin:
    """Look the plugin up, resolve the args now (secrets too) and validate them into its Args."""
    try:
        cls = env.registry.get(step.plugin)
    except UnknownPlugin as exc:
        raise SetupError(str(exc)) from None
    if cls.kind != kind:
        needs = f"this place needs {_a(kind.value)} plugin"
        raise SetupError(f"plugin '{cls.name}' is {_a(cls.kind.value)} plugin; {needs}")
    if not step.args:
        return cls()
    try:
        args = resolve_args(
            step.args,
            secret_fields=secret_fields(cls.Args),
            plugin=cls.name,
            variables=env.variables,
            env=env.env,
            secrets=env.secrets,
            redactor=env.redactor,
        )
    except Exception as exc:
        raise SetupError(f"could not resolve args: {describe(exc)}") from exc
    try:
        return cls(args)
    except ValidationError as exc:
        raise SetupError(f"invalid args: {_validation_text(exc)}") from None


def failure_message(env: RunEnv, pipeline: str, phase: str, step: StepSpec, exc: BaseException) -> str:
    """What failed, where and why: pipeline, phase, step id, plugin and cause, secrets redacted."""
    text = f"pipeline '{pipeline}', phase {phase}, step '{step.id}' ({step.plugin}): {describe(exc)}"
    return env.redact(text)
