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
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.events import (
    Event,
    PhaseFinished,
    PhaseStarted,
    PipelineFinished,
    PipelineStarted,
    Status,
)
from orchestrator.plugins.base import Plugin, PluginKind, StepContext, frame_types
from orchestrator.spec import ExtractPhase, LoadPhase, PipelineSpec, StepSpec
from orchestrator.steps import (
    TABLE_KINDS,
    Attempts,
    EngineStepContext,
    RunEnv,
    StepFailed,
    StepTimeout,
    argless,
    check_frame,
    failure_message,
    prepare_plugin,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from orchestrator.flow import PipelineFlow
    from orchestrator.plugins.base import Frame

__all__ = ["PipelineOutcome", "PipelineRun", "RunEnv", "StepFailed", "run_pipeline"]

#: a sync step call: (plugin, ctx, input) -> output
SyncCall = Callable[[Any, StepContext, Any], Any]
#: an async step call: (plugin, ctx) -> awaitable output
AsyncCall = Callable[[Any, StepContext], Awaitable[Any]]


@dataclass(frozen=True)
class PipelineOutcome:
    status: Status
    duration: float
    error: str | None = None


class _Abandoned(BaseException):
    """Raised in a worker thread whose phase was abandoned (timeout elsewhere, or cancellation)."""


@dataclass
class _SyncBatch:
    """State shared by the loop and the worker thread of one sync phase (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    seq: int = 0
    #: the attempt running now: (seq, its step's attempts)
    current: tuple[int, Attempts] | None = None


class PipelineRun:
    """One pipeline's run; ``outcome`` is set when it ends, also when it is cancelled."""

    def __init__(self, name: str, spec: PipelineSpec, env: RunEnv) -> None:
        self.name = name
        self.spec = spec
        self.env = env
        self.outcome: PipelineOutcome | None = None
        #: kept outputs and resume (None: the run does neither, and steps pay nothing for them)
        self.flow: PipelineFlow | None = None

    def emit(self, event: Event) -> None:
        self.env.bus.emit(event)

    async def run(self) -> PipelineOutcome:
        """Run every phase in order; returns the outcome, or re-raises CancelledError after recording it."""
        started = time.perf_counter()
        self.emit(PipelineStarted(pipeline=self.name))
        status, error = Status.SUCCEEDED, None
        try:
            if self.env.outputs is not None or self.env.resume:
                from orchestrator.flow import flow_for

                self.flow = flow_for(self.name, self.spec, self.env)
            await self._phases()
        except StepFailed as exc:
            status, error = Status.FAILED, str(exc)
        except asyncio.CancelledError:
            self._finish(Status.CANCELLED, started, "cancelled")
            raise
        return self._finish(status, started, error)

    def _finish(self, status: Status, started: float, error: str | None) -> PipelineOutcome:
        self.outcome = PipelineOutcome(status, time.perf_counter() - started, error)
        if self.flow is not None:
            self.flow.finish(status)
        self.emit(
            PipelineFinished(pipeline=self.name, status=status, duration=self.outcome.duration, error=error)
        )
        return self.outcome

    async def _phases(self) -> None:
        phases = self.spec.phases
        flow = self.flow
        data: Frame | None = None
        if phases.extract is not None:
            data = await self._phase("extract", self._extract(phases.extract))
        transform = phases.transform
        if transform is not None and transform.steps:
            steps = transform.steps
            if flow is not None and flow.resuming:
                reused = [s for s in steps if flow.is_reused("transform", s)]
                if reused:
                    data = (await flow.reuse("transform", reused)).get(reused[-1].id, data)
                    steps = steps[len(reused) :]
            if steps:
                data = await self._phase(
                    "transform", self._sync_steps("transform", steps, PluginKind.TRANSFORM, _transform, data)
                )
        if phases.load is not None:
            if flow is not None and flow.all_reused("load", phases.load.all_steps()):
                await flow.reuse("load", phases.load.all_steps())
            else:
                await self._phase("load", self._load(phases.load, data))
        if phases.transform_at_load is not None:
            steps = phases.transform_at_load.steps
            if flow is not None and flow.resuming:
                reused = [s for s in steps if flow.is_reused("transform_at_load", s)]
                await flow.reuse("transform_at_load", reused)
                steps = steps[len(reused) :]
            if steps:
                await self._phase(
                    "transform_at_load",
                    self._sync_steps(
                        "transform_at_load", steps, PluginKind.TRANSFORM_AT_LOAD, _execute, None
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
        if self.flow is not None and self.flow.resuming:
            return await self._extract_resumed(spec, self.flow)
        if spec.pre:
            await self._concurrently("extract", spec.pre, PluginKind.PRE, lambda p, ctx: p.run(ctx))
        frames = await self._concurrently(
            "extract", spec.steps, PluginKind.EXTRACT, lambda p, ctx: p.extract(ctx)
        )
        return await self._merge_and_post(spec, frames)

    async def _merge_and_post(self, spec: ExtractPhase, frames: dict[str, Any]) -> Frame:
        if spec.merge is None:
            data: Frame = next(iter(frames.values()))
        else:
            data = await self._sync_steps("extract", [spec.merge], PluginKind.MERGE, _merge, frames)
        if spec.post:
            await self._concurrently(
                "extract", spec.post, PluginKind.POST, lambda p, ctx: p.run(ctx, data), data
            )
        return data

    async def _extract_resumed(self, spec: ExtractPhase, flow: PipelineFlow) -> Frame:
        """The extract phase of a resumed pipeline: what the resume reuses is not run."""
        to_run = [s for s in spec.steps if not flow.is_reused("extract", s)]
        if spec.pre and not to_run:
            await flow.reuse("extract", spec.pre)
        elif spec.pre:
            await self._concurrently("extract", spec.pre, PluginKind.PRE, lambda p, ctx: p.run(ctx))
        frames = await flow.reuse("extract", [s for s in spec.steps if s not in to_run])
        if to_run:
            frames.update(
                await self._concurrently("extract", to_run, PluginKind.EXTRACT, lambda p, ctx: p.extract(ctx))
            )
        data: Any
        if spec.merge is None:
            data = frames.get(spec.steps[0].id)
        elif flow.is_reused("extract", spec.merge):
            data = (await flow.reuse("extract", [spec.merge])).get(spec.merge.id)
        else:
            ordered = {s.id: frames[s.id] for s in spec.steps}
            data = await self._sync_steps("extract", [spec.merge], PluginKind.MERGE, _merge, ordered)
        if spec.post and flow.all_reused("extract", spec.post):
            await flow.reuse("extract", spec.post)
        elif spec.post:
            await self._concurrently(
                "extract", spec.post, PluginKind.POST, lambda p, ctx: p.run(ctx, data), data
            )
        return data  # type: ignore[no-any-return]  # None when no step after it reads it

    async def _load(self, spec: LoadPhase, data: Frame | None) -> None:
        if spec.pre:
            await self._concurrently("load", spec.pre, PluginKind.PRE, lambda p, ctx: p.run(ctx))
        await self._concurrently("load", spec.steps, PluginKind.LOAD, lambda p, ctx: p.load(ctx, data), data)
        if spec.post:
            await self._concurrently(
                "load", spec.post, PluginKind.POST, lambda p, ctx: p.run(ctx, data), data
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
        attempts = Attempts(self.env, self.name, phase, step, kind, data)
        while True:
            attempts.start()
            try:
                plugin = prepare_plugin(self.env, step, kind)
                if step.timeout is None:
                    result = await call(plugin, attempts.ctx)
                else:
                    result = await self._with_timeout(step.timeout, call(plugin, attempts.ctx))
                if self.env.row_limit is not None and kind is PluginKind.EXTRACT:
                    result = _limited(result, self.env.row_limit)
                rows_out = attempts.output(result)
                if self.flow is not None:
                    result, rows_out = await self._after_async(attempts.ctx, kind, result, rows_out)
            except asyncio.CancelledError:
                attempts.finished(Status.CANCELLED, error="cancelled")
                raise
            except Exception as exc:
                message = attempts.failure(exc)
                attempts.failed(message)
                await asyncio.sleep(attempts.retry_delay(exc, message))
                continue
            attempts.succeeded(rows_out)
            return result

    async def _after_async(
        self, ctx: StepContext, kind: PluginKind, result: Any, rows_out: int | None
    ) -> tuple[Any, int | None]:
        assert self.flow is not None
        if kind is PluginKind.EXTRACT:
            kept, rows = await asyncio.to_thread(self.flow.after_table, ctx, result)
            return kept, rows if rows is not None else rows_out
        self.flow.after_step(ctx)
        return result, rows_out

    def _after_sync(
        self, ctx: StepContext, kind: PluginKind, result: Any, rows_out: int | None
    ) -> tuple[Any, int | None]:
        assert self.flow is not None
        if kind is PluginKind.TRANSFORM_AT_LOAD:
            self.flow.after_step(ctx)
            return result, rows_out
        kept, rows = self.flow.after_table(ctx, result)
        return kept, rows if rows is not None else rows_out

    @staticmethod
    async def _with_timeout(seconds: float, work: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await work
        except TimeoutError:
            if scope.expired():
                raise StepTimeout(seconds) from None
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
                if self.env.bus.sinks:
                    result = data
                    for step in steps:
                        result = self._sync_step(loop, batch, phase, step, kind, call, result, done)
                else:
                    result = self._quiet_steps(loop, batch, phase, steps, kind, call, data, done)
            except BaseException as exc:  # handed to the loop, which raises it in the phase
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: this thread was abandoned
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name=f"pipedeck {self.name} {phase}", daemon=True).start()
        try:
            return await done
        except asyncio.CancelledError:
            self._abandon(batch, phase, Status.CANCELLED, "cancelled")
            raise

    def _abandon(
        self, batch: _SyncBatch, phase: str, status: Status, error: str, *, only_seq: int | None = None
    ) -> bool:
        """Stop a sync phase from the loop (the worker thread stops before its next step); with
        ``only_seq``, only while that attempt is still running. True when this call abandoned it."""
        with batch.lock:
            if batch.abandoned:
                return False
            if only_seq is not None and (batch.current is None or batch.current[0] != only_seq):
                return False  # that attempt ended in time
            batch.abandoned = True
            batch.stop.set()
            if batch.current is not None:
                batch.current[1].finished(status, error=error)
            return True

    def _quiet_steps(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: _SyncBatch,
        phase: str,
        steps: list[StepSpec],
        kind: PluginKind,
        call: SyncCall,
        data: Any,
        done: asyncio.Future[Any],
    ) -> Any:
        """``_sync_step`` for each step when no sink listens (the worker thread): nothing reads an attempt's
        events then, nor ``batch.current`` for a step without a timeout, so such a step that succeeds at
        once costs its context, its plugin and its call (W1 measures this path). A step whose first
        attempt fails goes on in ``_sync_step`` (its retries, its failure), as does a step with a
        timeout."""
        env, flow = self.env, self.flow
        # the fields its steps' contexts share, as class attributes: each context then holds only its own
        context = type(
            "PhaseStepContext",
            (EngineStepContext,),
            {**env.context_fields, "pipeline": self.name, "phase": phase},
        )
        new_context = EngineStepContext.__new__
        frames = frame_types() if kind in TABLE_KINDS else None
        plain: dict[str, tuple[type[Plugin], BaseModel] | None] = {}  # plugin -> see ``argless``
        for step in steps:
            if batch.abandoned:
                raise _Abandoned
            if step.timeout is not None:  # watched from the loop: the tracked path
                data = self._sync_step(loop, batch, phase, step, kind, call, data, done)
                continue
            ctx: EngineStepContext = new_context(context)
            ctx.step_id = step.id
            ctx.plugin = step.plugin
            try:
                if step.plugin not in plain:
                    plain[step.plugin] = argless(env, step.plugin, kind)
                made = None if step.args else plain[step.plugin]
                if made is None:
                    plugin = prepare_plugin(env, step, kind)
                else:
                    plugin = made[0].__new__(made[0])
                    plugin.args = made[1]
                result = call(plugin, ctx, data)
                if frames is not None and not isinstance(result, frames):
                    check_frame(result)  # raises: what the step returned is not a table
                if flow is not None:
                    result, _ = self._after_sync(ctx, kind, result, None)
            except Exception as exc:
                result = self._sync_step(loop, batch, phase, step, kind, call, data, done, (ctx, exc))
            data = result
        if batch.abandoned:
            raise _Abandoned
        return data

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
        first_failed: tuple[EngineStepContext, Exception] | None = None,
    ) -> Any:
        """One sync step with its retries (runs in the worker thread). ``first_failed``: its first attempt
        was made by ``_quiet_steps`` (with that context) and raised that error."""
        attempts = Attempts(self.env, self.name, phase, step, kind, data)
        # With no sink and no timeout nothing reads ``batch.current``: the worker skips the lock then and
        # only looks whether the phase was abandoned.
        tracked = attempts.listened or step.timeout is not None
        failed: Exception | None = None
        if first_failed is not None:
            attempts.ctx, failed = first_failed
            attempts.number = 1

        def attempt() -> Any:
            """One attempt: its result, or the step's exception."""
            if tracked:
                with batch.lock:
                    if batch.abandoned:
                        raise _Abandoned
                    batch.seq += 1
                    seq = batch.seq
                    attempts.start()
                    batch.current = (seq, attempts)
                if step.timeout is not None:
                    loop.call_soon_threadsafe(self._arm_timeout, loop, batch, seq, phase, step, done)
            elif batch.abandoned:
                raise _Abandoned
            else:
                attempts.start()
            result = call(prepare_plugin(self.env, step, kind), attempts.ctx, data)
            rows_out = attempts.output(result)
            if self.flow is not None:
                result, rows_out = self._after_sync(attempts.ctx, kind, result, rows_out)
            if tracked:
                with batch.lock:
                    if batch.abandoned:
                        raise _Abandoned
                    batch.current = None
                    attempts.succeeded(rows_out)
            elif batch.abandoned:
                raise _Abandoned
            return result

        while True:
            if failed is None:
                try:
                    return attempt()
                except Exception as exc:
                    failed = exc
            message = attempts.failure(failed)
            with batch.lock:
                if batch.abandoned:
                    raise _Abandoned from None
                batch.current = None
                attempts.failed(message)
            if batch.stop.wait(attempts.retry_delay(failed, message)):
                raise _Abandoned from None
            failed = None

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
            message = failure_message(self.env, self.name, phase, step, StepTimeout(step.timeout or 0))
            if self._abandon(batch, phase, Status.FAILED, message, only_seq=seq) and not done.done():
                done.set_exception(StepFailed(message))

        with batch.lock:
            if batch.current is None or batch.current[0] != seq:
                return
            started = batch.current[1].started
        loop.call_later(max(0.0, step.timeout - (time.perf_counter() - started)), expire)


def _limited(result: Any, rows: int) -> Any:
    """An extract step's table cut to a preview's row limit (whatever the plugin did with the limit)."""
    return result.head(rows) if isinstance(result, frame_types()) else result


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
