"""Runs one pipeline by the execution rules of DESIGN.md.

extract: pre steps, then the steps concurrently on the loop, then the merge (sync, in a worker thread),
then post steps. transform: in order, in one worker thread. load: pre, steps concurrently, post.
transform_at_load: in order, in one worker thread. A step's args are resolved and validated just before
it runs. A failing step cancels its concurrent siblings and fails its phase and the pipeline.

Sync steps run in a daemon thread per phase (not an executor): a step that times out or is cancelled
cannot be killed, so its thread is abandoned (it stops before its next step) and never blocks the
process from exiting. For the same reason a sync step that timed out is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import ValidationError

from orchestrator.events import (
    Event,
    PhaseFinished,
    PhaseStarted,
    PipelineFinished,
    PipelineStarted,
    Status,
    StepFinished,
    StepProgress,
    StepStarted,
)
from orchestrator.logs import EventBus, step_logger
from orchestrator.plugins.base import Frame, Plugin, PluginError, PluginKind, StepContext, row_count
from orchestrator.plugins.registry import PluginRegistry, UnknownPlugin
from orchestrator.resolve import Redactor, ResolveError, resolve_value
from orchestrator.spec import ExtractPhase, LoadPhase, PipelineSpec, StepSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from orchestrator.resolve import SecretResolver

#: a sync step call: (plugin, ctx, input) -> output
SyncCall = Callable[[Any, StepContext, Any], Any]
#: an async step call: (plugin, ctx) -> awaitable output
AsyncCall = Callable[[Any, StepContext], Awaitable[Any]]


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

    def redact(self, text: str) -> str:
        """``text`` without any secret value resolved so far in this run."""
        return self.redactor.redact(text)

    @cached_property
    def secrets_view(self) -> Mapping[str, str]:
        """What steps see as ``ctx.secrets``."""
        return _SecretsView(self)


class _StepContext(StepContext):
    """A StepContext whose logger is built on first use: most steps never log, and a logger is not free."""

    def __init__(self, make_logger: Callable[[], logging.Logger], **fields: Any) -> None:
        self._make_logger = make_logger
        super().__init__(logger=None, **fields)  # type: ignore[arg-type]

    @property  # type: ignore[override]
    def logger(self) -> logging.Logger:
        if self._logger is None:
            self._logger = self._make_logger()
        return self._logger

    @logger.setter
    def logger(self, value: logging.Logger | None) -> None:
        self._logger = value


class _SecretsView(Mapping[str, str]):
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


@dataclass(frozen=True)
class PipelineOutcome:
    status: Status
    duration: float
    error: str | None = None


class StepFailed(Exception):
    """A step failed for good; the message names pipeline, phase, step and plugin, secrets redacted."""


class _SetupError(Exception):
    """The step could not start (unknown plugin, wrong kind, bad args): retrying cannot help."""


class _StepTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s")


class _Abandoned(BaseException):
    """Raised in a worker thread whose phase was abandoned (timeout elsewhere, or cancellation)."""


@dataclass
class _SyncBatch:
    """State shared by the loop and the worker thread of one sync phase (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    seq: int = 0
    #: the attempt running now: (seq, step, attempt, started)
    current: tuple[int, StepSpec, int, float] | None = None


def _rows_in(data: Any) -> int | None:
    if isinstance(data, dict):
        counts = [row_count(f) for f in data.values()]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    return row_count(data) if isinstance(data, pl.DataFrame | pl.LazyFrame) else None


def _check_frame(result: Any) -> Frame:
    if not isinstance(result, pl.DataFrame | pl.LazyFrame):
        raise PluginError(f"returned {type(result).__name__}; expected a polars DataFrame or LazyFrame")
    return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PluginError | ResolveError | _SetupError | _StepTimeout):
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


class PipelineRun:
    """One pipeline's run; ``outcome`` is set when it ends, also when it is cancelled."""

    def __init__(self, name: str, spec: PipelineSpec, env: RunEnv) -> None:
        self.name = name
        self.spec = spec
        self.env = env
        self.outcome: PipelineOutcome | None = None

    def emit(self, event: Event) -> None:
        self.env.bus.emit(event)

    async def run(self) -> PipelineOutcome:
        """Run every phase in order; returns the outcome, or re-raises CancelledError after recording it."""
        started = time.perf_counter()
        self.emit(PipelineStarted(pipeline=self.name))
        status, error = Status.SUCCEEDED, None
        try:
            await self._phases()
        except StepFailed as exc:
            status, error = Status.FAILED, str(exc)
        except asyncio.CancelledError:
            self._finish(Status.CANCELLED, started, "cancelled")
            raise
        return self._finish(status, started, error)

    def _finish(self, status: Status, started: float, error: str | None) -> PipelineOutcome:
        self.outcome = PipelineOutcome(status, time.perf_counter() - started, error)
        self.emit(
            PipelineFinished(pipeline=self.name, status=status, duration=self.outcome.duration, error=error)
        )
        return self.outcome

    async def _phases(self) -> None:
        phases = self.spec.phases
        data: Frame | None = None
        if phases.extract is not None:
            data = await self._phase("extract", self._extract(phases.extract))
        if phases.transform is not None and phases.transform.steps:
            data = await self._phase(
                "transform",
                self._sync_steps("transform", phases.transform.steps, PluginKind.TRANSFORM, _transform, data),
            )
        if phases.load is not None:
            await self._phase("load", self._load(phases.load, data))
        if phases.transform_at_load is not None:
            await self._phase(
                "transform_at_load",
                self._sync_steps(
                    "transform_at_load",
                    phases.transform_at_load.steps,
                    PluginKind.TRANSFORM_AT_LOAD,
                    _execute,
                    None,
                ),
            )

    async def _phase[T](self, phase: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        self.emit(PhaseStarted(pipeline=self.name, phase=phase))
        try:
            result = await work
        except StepFailed as exc:
            self._phase_finished(phase, Status.FAILED, started, str(exc))
            raise
        except asyncio.CancelledError:
            self._phase_finished(phase, Status.CANCELLED, started, "cancelled")
            raise
        self._phase_finished(phase, Status.SUCCEEDED, started, None)
        return result

    def _phase_finished(self, phase: str, status: Status, started: float, error: str | None) -> None:
        duration = time.perf_counter() - started
        self.emit(
            PhaseFinished(pipeline=self.name, phase=phase, status=status, duration=duration, error=error)
        )

    async def _extract(self, spec: ExtractPhase) -> Frame:
        if spec.pre:
            await self._concurrently("extract", spec.pre, PluginKind.PRE, lambda p, ctx: p.run(ctx))
        frames = await self._concurrently(
            "extract", spec.steps, PluginKind.EXTRACT, lambda p, ctx: p.extract(ctx)
        )
        if spec.merge is None:
            data: Frame = next(iter(frames.values()))
        else:
            data = await self._sync_steps("extract", [spec.merge], PluginKind.MERGE, _merge, frames)
        if spec.post:
            await self._concurrently(
                "extract", spec.post, PluginKind.POST, lambda p, ctx: p.run(ctx, data), data
            )
        return data

    async def _load(self, spec: LoadPhase, data: Frame | None) -> None:
        if spec.pre:
            await self._concurrently("load", spec.pre, PluginKind.PRE, lambda p, ctx: p.run(ctx))
        await self._concurrently("load", spec.steps, PluginKind.LOAD, lambda p, ctx: p.load(ctx, data), data)
        if spec.post:
            await self._concurrently(
                "load", spec.post, PluginKind.POST, lambda p, ctx: p.run(ctx, data), data
            )

    # -- shared by both kinds of step -------------------------------------------------------------------

    def _context(self, phase: str, step: StepSpec) -> StepContext:
        bus, pipeline = self.env.bus, self.name

        def on_progress(rows: int, total: int | None) -> None:
            bus.emit(StepProgress(pipeline=pipeline, phase=phase, step=step.id, rows=rows, total=total))

        return _StepContext(
            lambda: step_logger(bus, pipeline, phase, step.id),
            pipeline=pipeline,
            phase=phase,
            step_id=step.id,
            plugin=step.plugin,
            data_root=self.env.data_root,
            secrets=self.env.secrets_view,
            on_progress=on_progress,
        )

    def _prepare(self, step: StepSpec, kind: PluginKind) -> Plugin:
        """Look the plugin up, resolve the args now (secrets too) and validate them into its Args."""
        try:
            cls = self.env.registry.get(step.plugin)
        except UnknownPlugin as exc:
            raise _SetupError(str(exc)) from None
        if cls.kind != kind:
            raise _SetupError(
                f"plugin '{cls.name}' is {_a(cls.kind.value)} plugin; this place needs {_a(kind.value)} plugin"
            )
        if not step.args:
            return cls()
        try:
            args = resolve_value(
                step.args,
                variables=self.env.variables,
                env=self.env.env,
                secrets=self.env.secrets,
                redactor=self.env.redactor,
            )
        except Exception as exc:
            raise _SetupError(f"could not resolve args: {_describe(exc)}") from exc
        try:
            return cls(args)
        except ValidationError as exc:
            raise _SetupError(f"invalid args: {_validation_text(exc)}") from None

    def _failure(self, phase: str, step: StepSpec, exc: BaseException, ctx: StepContext) -> str:
        if not isinstance(exc, PluginError | _SetupError | _StepTimeout):
            ctx.logger.error("step failed", exc_info=exc)
        text = f"pipeline '{self.name}', phase {phase}, step '{step.id}' ({step.plugin}): {_describe(exc)}"
        return self.env.redact(text)

    def _step_started(self, phase: str, step: StepSpec, attempt: int) -> None:
        if not self.env.bus.sinks:  # nobody listens: skip building the event (per-step overhead)
            return
        self.emit(
            StepStarted(pipeline=self.name, phase=phase, step=step.id, plugin=step.plugin, attempt=attempt)
        )

    def _step_finished(
        self,
        phase: str,
        step: StepSpec,
        attempt: int,
        status: Status,
        started: float,
        *,
        rows_in: int | None = None,
        rows_out: int | None = None,
        error: str | None = None,
    ) -> None:
        if not self.env.bus.sinks:
            return
        self.emit(
            StepFinished(
                pipeline=self.name,
                phase=phase,
                step=step.id,
                plugin=step.plugin,
                status=status,
                duration=time.perf_counter() - started,
                rows_in=rows_in,
                rows_out=rows_out,
                error=error,
                attempt=attempt,
            )
        )

    # -- async steps, on the loop ------------------------------------------------------------------------

    async def _concurrently(
        self, phase: str, steps: list[StepSpec], kind: PluginKind, call: AsyncCall, data: Any = None
    ) -> dict[str, Any]:
        """Run ``steps`` concurrently; the first failure cancels the others and is raised."""
        if len(steps) == 1:
            return {steps[0].id: await self._async_step(phase, steps[0], kind, call, data)}
        tasks = [asyncio.create_task(self._async_step(phase, s, kind, call, data)) for s in steps]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pending = [t for t in tasks if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        for task in tasks:  # in step order, so the reported failure does not depend on timing
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return {s.id: t.result() for s, t in zip(steps, tasks, strict=True)}

    async def _async_step(
        self, phase: str, step: StepSpec, kind: PluginKind, call: AsyncCall, data: Any
    ) -> Any:
        ctx = self._context(phase, step)
        rows_in = _rows_in(data)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            self._step_started(phase, step, attempt)
            try:
                plugin = self._prepare(step, kind)
                if step.timeout is None:
                    result = await call(plugin, ctx)
                else:
                    result = await self._with_timeout(step.timeout, call(plugin, ctx))
                rows_out = row_count(_check_frame(result)) if kind == PluginKind.EXTRACT else None
            except asyncio.CancelledError:
                self._step_finished(phase, step, attempt, Status.CANCELLED, started, error="cancelled")
                raise
            except Exception as exc:
                message = self._failure(phase, step, exc, ctx)
                self._step_finished(
                    phase, step, attempt, Status.FAILED, started, rows_in=rows_in, error=message
                )
                if isinstance(exc, _SetupError) or attempt > step.retries:
                    raise StepFailed(message) from exc
                delay = step.retry_backoff * 2 ** (attempt - 1)
                ctx.logger.warning("attempt %d failed; retrying in %g s", attempt, delay)
                await asyncio.sleep(delay)
                continue
            self._step_finished(
                phase, step, attempt, Status.SUCCEEDED, started, rows_in=rows_in, rows_out=rows_out
            )
            return result

    @staticmethod
    async def _with_timeout(seconds: float, work: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await work
        except TimeoutError:
            if scope.expired():
                raise _StepTimeout(seconds) from None
            raise

    # -- sync steps, in order, in one worker thread ------------------------------------------------------

    async def _sync_steps(
        self, phase: str, steps: list[StepSpec], kind: PluginKind, call: SyncCall, data: Any
    ) -> Any:
        """Run ``steps`` one after another in a worker thread, each given the previous one's output."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        batch = _SyncBatch()

        def settle(result: Any, error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(result)
            elif not isinstance(error, _Abandoned):
                done.set_exception(error)

        def work() -> None:
            result, error = None, None
            try:
                result = data
                for step in steps:
                    result = self._sync_step(loop, batch, phase, step, kind, call, result, done)
            except BaseException as exc:  # handed to the loop, which raises it in the phase
                error = exc
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # the loop is closed: this thread was abandoned
                pass

        threading.Thread(target=work, name=f"pipedeck {self.name} {phase}", daemon=True).start()
        try:
            return await done
        except asyncio.CancelledError:
            self._abandon(batch, phase, Status.CANCELLED, "cancelled")
            raise

    def _abandon(self, batch: _SyncBatch, phase: str, status: Status, error: str) -> None:
        """Stop a sync phase from the loop: the worker thread stops before its next step."""
        with batch.lock:
            if batch.abandoned:
                return
            batch.abandoned = True
            batch.stop.set()
            if batch.current is not None:
                _, step, attempt, started = batch.current
                self._step_finished(phase, step, attempt, status, started, error=error)

    def _sync_step(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: _SyncBatch,
        phase: str,
        step: StepSpec,
        kind: PluginKind,
        call: SyncCall,
        data: Any,
        done: asyncio.Future[Any],
    ) -> Any:
        """One sync step with its retries (runs in the worker thread)."""
        ctx = self._context(phase, step)
        rows_in = _rows_in(data)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            with batch.lock:
                if batch.abandoned:
                    raise _Abandoned
                batch.seq += 1
                seq = batch.seq
                batch.current = (seq, step, attempt, started)
                self._step_started(phase, step, attempt)
            if step.timeout is not None:
                loop.call_soon_threadsafe(self._arm_timeout, loop, batch, seq, phase, step, done)
            try:
                result = call(self._prepare(step, kind), ctx, data)
                rows_out = row_count(_check_frame(result)) if kind != PluginKind.TRANSFORM_AT_LOAD else None
            except Exception as exc:
                message = self._failure(phase, step, exc, ctx)
                with batch.lock:
                    if batch.abandoned:
                        raise _Abandoned from None
                    batch.current = None
                    self._step_finished(
                        phase, step, attempt, Status.FAILED, started, rows_in=rows_in, error=message
                    )
                if isinstance(exc, _SetupError) or attempt > step.retries:
                    raise StepFailed(message) from exc
                delay = step.retry_backoff * 2 ** (attempt - 1)
                ctx.logger.warning("attempt %d failed; retrying in %g s", attempt, delay)
                if batch.stop.wait(delay):
                    raise _Abandoned from None
                continue
            with batch.lock:
                if batch.abandoned:
                    raise _Abandoned
                batch.current = None
                self._step_finished(
                    phase, step, attempt, Status.SUCCEEDED, started, rows_in=rows_in, rows_out=rows_out
                )
            return result

    def _arm_timeout(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: _SyncBatch,
        seq: int,
        phase: str,
        step: StepSpec,
        done: asyncio.Future[Any],
    ) -> None:
        assert step.timeout is not None

        def expire() -> None:
            with batch.lock:
                if batch.abandoned or batch.current is None or batch.current[0] != seq:
                    return  # that attempt ended in time
            message = self.env.redact(
                f"pipeline '{self.name}', phase {phase}, step '{step.id}' ({step.plugin}): "
                f"{_StepTimeout(step.timeout or 0)}"
            )
            self._abandon(batch, phase, Status.FAILED, message)
            if not done.done():
                done.set_exception(StepFailed(message))

        with batch.lock:
            if batch.current is None or batch.current[0] != seq:
                return
            started = batch.current[3]
        loop.call_later(max(0.0, step.timeout - (time.perf_counter() - started)), expire)


def _merge(plugin: Any, ctx: StepContext, frames: Any) -> Any:
    return plugin.merge(ctx, frames)


def _transform(plugin: Any, ctx: StepContext, data: Any) -> Any:
    return plugin.transform(ctx, data)


def _execute(plugin: Any, ctx: StepContext, data: Any) -> Any:
    plugin.execute(ctx)
    return None


async def run_pipeline(name: str, spec: PipelineSpec, env: RunEnv) -> PipelineOutcome:
    """Run one pipeline and return its outcome (CancelledError propagates after the events are sent)."""
    return await PipelineRun(name, spec, env).run()
