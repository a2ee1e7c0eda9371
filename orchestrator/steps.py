"""What a step needs from its run: the shared environment, its context, its plugin with resolved and
validated args, its attempts and the words of its failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from orchestrator.egress import EgressPolicy
from orchestrator.events import Status, StepFinished, StepProgress, StepStarted
from orchestrator.logs import EventBus, step_logger
from orchestrator.plugins.base import (
    Plugin,
    PluginError,
    PluginKind,
    StepContext,
    frame_types,
    row_count,
    secret_fields,
)
from orchestrator.plugins.registry import PluginRegistry, UnknownPlugin
from orchestrator.resolve import Redactor, ResolveError, resolve_args
from orchestrator.spec import StepSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator.outputs import KeepOutputs
    from orchestrator.plugins.base import Frame
    from orchestrator.resolve import SecretResolver
    from orchestrator.resume import ResumePoint


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
    #: what the run keeps of its steps' outputs (None: nothing, and steps pay nothing for it)
    outputs: KeepOutputs | None = None
    #: per pipeline, where it resumes (``orchestrator.resume``)
    resume: Mapping[str, ResumePoint] | None = None
    #: a preview's row limit for extract steps
    row_limit: int | None = None

    def redact(self, text: str) -> str:
        """``text`` without any secret value resolved so far in this run."""
        return self.redactor.redact(text)

    @cached_property
    def secrets_view(self) -> Mapping[str, str]:
        """What steps see as ``ctx.secrets``."""
        return SecretsView(self)

    @cached_property
    def context_fields(self) -> dict[str, Any]:
        """The attributes every step's context shares."""
        return {
            "data_root": self.data_root,
            "secrets": self.secrets_view,
            "network": self.network,
            "row_limit": self.row_limit,
            "_logger": None,
            "_bus": self.bus,
        }


class EngineStepContext(StepContext):
    """The engine's StepContext: its logger is built on first use (most steps never log, and a logger
    is not free) and progress goes straight to the bus. Built for speed: it runs once per step."""

    _logger: logging.Logger | None
    _bus: EventBus

    def __init__(self, env: RunEnv, pipeline: str, phase: str, step: StepSpec) -> None:
        # Not the dataclass __init__: filling the dict from the run's shared fields is several times
        # cheaper, and W1 measures this.
        fields = self.__dict__
        fields.update(env.context_fields)
        fields["pipeline"] = pipeline
        fields["phase"] = phase
        fields["step_id"] = step.id
        fields["plugin"] = step.plugin

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
    return row_count(data) if isinstance(data, frame_types()) else None


def check_frame(result: Any) -> Frame:
    """``result`` when it is a table; a PluginError naming what the step returned instead."""
    if not isinstance(result, frame_types()):
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
        shared = _shared_args(cls)
        if shared is not None:
            plugin = cls.__new__(cls)
            plugin.args = shared  # what Plugin.__init__ does with a model (``_shared_args`` checked it)
            return plugin
        return _made(cls, None)
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
    return _made(cls, args)


def _made(cls: type[Plugin], args: dict[str, Any] | None) -> Plugin:
    """The plugin with its args validated (none given: its Args' defaults); SetupError saying what is
    wrong with them."""
    try:
        return cls(args) if args is not None else cls()
    except ValidationError as exc:
        raise SetupError(f"invalid args: {_validation_text(exc)}") from None


def argless(env: RunEnv, name: str, kind: PluginKind) -> tuple[type[Plugin], BaseModel] | None:
    """For plugin ``name`` of ``kind`` when its Args has no fields: the class and the args its instances
    share, so a caller running many steps without args can make each plugin without ``prepare_plugin``'s
    look-up; None otherwise (``prepare_plugin`` then builds it, or says what is wrong)."""
    if name not in env.registry:
        return None
    cls = env.registry.get(name)
    shared = _shared_args(cls) if cls.kind == kind else None
    return None if shared is None else (cls, shared)


#: plugin class -> its shared empty args, or None (see ``_shared_args``)
_SHARED_ARGS: dict[type[Plugin], BaseModel | None] = {}


def _shared_args(cls: type[Plugin]) -> BaseModel | None:
    """For a plugin whose ``Args`` has no fields (so an instance holds nothing that could change): one
    validated instance that all its steps share; None otherwise. Validating an empty model again for
    each step would cost more than the rest of running it."""
    try:
        return _SHARED_ARGS[cls]
    except KeyError:
        pass
    model = cls.Args
    fieldless = not (
        model.model_fields or model.__private_attributes__ or model.model_config.get("extra") == "allow"
    )
    shared = _SHARED_ARGS[cls] = model() if fieldless and cls.__init__ is Plugin.__init__ else None
    return shared


def failure_message(env: RunEnv, pipeline: str, phase: str, step: StepSpec, exc: BaseException) -> str:
    """What failed, where and why: pipeline, phase, step id, plugin and cause, secrets redacted."""
    text = f"pipeline '{pipeline}', phase {phase}, step '{step.id}' ({step.plugin}): {describe(exc)}"
    return env.redact(text)


#: kinds whose call returns the table the next step gets
TABLE_KINDS = frozenset({PluginKind.EXTRACT, PluginKind.MERGE, PluginKind.TRANSFORM})


class Attempts:
    """One step's attempts, for the engine's async and sync loops alike: the context, each attempt's
    events, the words of a failure, and whether (and after how long) a failed attempt is tried again.

    Events are built only when a sink listens (``listened``): with none, a step costs what running its
    plugin does, plus a few attribute reads.
    """

    __slots__ = (
        "ctx",
        "env",
        "kind",
        "listened",
        "number",
        "rows_in",
        "started",
        "step",
    )

    def __init__(
        self, env: RunEnv, pipeline: str, phase: str, step: StepSpec, kind: PluginKind, data: Any
    ) -> None:
        self.env, self.step, self.kind = env, step, kind
        self.ctx = EngineStepContext(env, pipeline, phase, step)
        self.listened = bool(env.bus.sinks)
        self.rows_in = input_rows(data) if self.listened else None  # rows only feed events
        self.number = 0
        self.started = 0.0

    def start(self) -> None:
        """Count the next attempt and report that it starts."""
        self.number += 1
        self.started = time.perf_counter()
        if self.listened:
            step, ctx = self.step, self.ctx
            self.env.bus.emit(
                StepStarted.fast(
                    pipeline=ctx.pipeline,
                    phase=ctx.phase,
                    step=step.id,
                    plugin=step.plugin,
                    attempt=self.number,
                )
            )

    def output(self, result: Any) -> int | None:
        """Check what the attempt returned (a table, for kinds that return one); its rows for the event."""
        if self.kind not in TABLE_KINDS:
            return None
        frame = check_frame(result)
        return row_count(frame) if self.listened else None

    def succeeded(self, rows_out: int | None) -> None:
        if self.listened:
            self.finished(Status.SUCCEEDED, rows_in=self.rows_in, rows_out=rows_out)

    def failure(self, exc: BaseException) -> str:
        """The failure message of the attempt that raised ``exc`` (an unexpected error logs its traceback)."""
        if not isinstance(exc, PluginError | SetupError | StepTimeout):
            self.ctx.logger.error("step failed", exc_info=exc)
        return failure_message(self.env, self.ctx.pipeline, self.ctx.phase, self.step, exc)

    def failed(self, message: str) -> None:
        self.finished(Status.FAILED, rows_in=self.rows_in, error=message)

    def retry_delay(self, exc: BaseException, message: str) -> float:
        """Seconds to wait before the next attempt; raises StepFailed when none is left, or when retrying
        cannot help (the step could not even start)."""
        if isinstance(exc, SetupError) or self.number > self.step.retries:
            raise StepFailed(message) from exc
        delay: float = self.step.retry_backoff * 2 ** (self.number - 1)
        self.ctx.logger.warning("attempt %d failed; retrying in %g s", self.number, delay)
        return delay

    def finished(
        self,
        status: Status,
        *,
        rows_in: int | None = None,
        rows_out: int | None = None,
        error: str | None = None,
    ) -> None:
        """Report how the current attempt ended."""
        if not self.listened:
            return
        step, ctx = self.step, self.ctx
        self.env.bus.emit(
            StepFinished.fast(
                pipeline=ctx.pipeline,
                phase=ctx.phase,
                step=step.id,
                plugin=step.plugin,
                status=status,
                duration=time.perf_counter() - self.started,
                rows_in=rows_in,
                rows_out=rows_out,
                error=error,
                attempt=self.number,
            )
        )
