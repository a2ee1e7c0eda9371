"""Runs a project: many pipelines at once up to ``concurrency``, each as soon as all it ``needs`` succeeded.

A pipeline whose dependency failed, was skipped or was cancelled is not run: it finishes ``skipped`` with
the reason. With ``only``, just those pipelines run; their ``needs`` on pipelines outside ``only`` count
as satisfied (the caller asked for that subset, e.g. to re-run one pipeline after fixing it), while needs
inside the subset still order them.

The run's status: ``failed`` when a pipeline failed; else ``cancelled`` when the run or a pipeline was
cancelled; else ``succeeded``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.control import RunControl
from orchestrator.egress import EgressPolicy
from orchestrator.engine import PipelineOutcome, PipelineRun, RunEnv
from orchestrator.events import EventSink, PipelineFinished, RunFinished, RunStarted, Status
from orchestrator.logs import EventBus
from orchestrator.parameters import with_run_context
from orchestrator.plugins.registry import PluginRegistry, registry as default_registry
from orchestrator.resolve import Redactor, SecretResolver, env_secret_resolver
from orchestrator.spec import ProjectSpec

if TYPE_CHECKING:
    from orchestrator.outputs import KeepOutputs
    from orchestrator.resume import ResumeFrom

DATA_ROOT_ENV = "PIPEDECK_DATA_ROOT"


@dataclass(frozen=True)
class PipelineResult:
    status: Status
    duration: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class RunResult:
    status: Status
    duration: float
    pipelines: dict[str, PipelineResult] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every pipeline that ran succeeded."""
        return self.status == Status.SUCCEEDED


class UnknownPipelines(ValueError):
    """``only`` names pipelines the project does not have."""


def select_pipelines(project: ProjectSpec, only: Iterable[str] | None) -> list[str]:
    """The pipelines to run, in file order; raises UnknownPipelines for names not in the project."""
    if only is None:
        return list(project.pipelines)
    wanted = list(dict.fromkeys(only))
    unknown = [n for n in wanted if n not in project.pipelines]
    if unknown:
        known = ", ".join(project.pipelines)
        raise UnknownPipelines(
            f"no pipeline named {', '.join(repr(n) for n in unknown)} in this project (it has: {known})"
        )
    return [n for n in project.pipelines if n in wanted]


class _Scheduler:
    def __init__(self, project: ProjectSpec, names: list[str], env: RunEnv, control: RunControl) -> None:
        self.project = project
        self.env = env
        self.control = control
        selected = set(names)
        self.needs = {n: [d for d in project.pipelines[n].needs if d in selected] for n in names}
        self.waiting = list(names)
        self.running: dict[asyncio.Task[PipelineOutcome], PipelineRun] = {}
        self.results: dict[str, PipelineResult] = {}
        self.wake: asyncio.Future[None] | None = None

    def on_cancel(self, name: str | None) -> None:
        """Runs on the loop (via RunControl): cancel running pipelines now, waiting ones at the next scan."""
        for task, run in self.running.items():
            if name is None or run.name == name:
                task.cancel()
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._scan()
                if not self.running:
                    break
                self.wake = loop.create_future()
                waits: list[asyncio.Future[Any]] = [*self.running, self.wake]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in [t for t in self.running if t.done()]:
                    self._record(task, self.running.pop(task))
        except asyncio.CancelledError:
            for task in self.running:
                task.cancel()
            if self.running:
                await asyncio.wait(self.running)
            for task, run in self.running.items():
                self._record(task, run)
            raise
        finally:
            if self.wake is not None and not self.wake.done():
                self.wake.cancel()

    def _scan(self) -> None:
        """Settle or start waiting pipelines until nothing changes."""
        changed = True
        while changed:
            changed = False
            for name in list(self.waiting):
                if self.control.pipeline_cancelled(name):
                    self._settle(name, Status.CANCELLED, "cancelled before it started")
                elif reason := self._blocked_by(name):
                    self._settle(name, Status.SKIPPED, reason)
                elif all(d in self.results for d in self.needs[name]):
                    if len(self.running) >= self.project.concurrency:
                        continue
                    run = PipelineRun(name, self.project.pipelines[name], self.env)
                    self.running[asyncio.create_task(run.run(), name=f"pipeline {name}")] = run
                else:
                    continue
                self.waiting.remove(name)
                changed = True

    def _blocked_by(self, name: str) -> str | None:
        for dep in self.needs[name]:
            result = self.results.get(dep)
            if result is not None and result.status != Status.SUCCEEDED:
                what = {Status.FAILED: "failed", Status.SKIPPED: "was skipped"}.get(
                    result.status, "was cancelled"
                )
                return f"skipped: it needs '{dep}', which {what}"
        return None

    def _settle(self, name: str, status: Status, reason: str) -> None:
        """Finish a pipeline that never started."""
        self.results[name] = PipelineResult(status, 0.0, reason)
        self.env.bus.emit(PipelineFinished(pipeline=name, status=status, duration=0.0, error=reason))

    def _record(self, task: asyncio.Task[PipelineOutcome], run: PipelineRun) -> None:
        outcome = run.outcome
        if outcome is None:  # the engine itself broke: still report the pipeline as failed
            error = "cancelled" if task.cancelled() else f"internal error: {task.exception()!r}"
            status = Status.CANCELLED if task.cancelled() else Status.FAILED
            outcome = PipelineOutcome(status, 0.0, error)
            self.env.bus.emit(PipelineFinished(pipeline=run.name, status=status, duration=0.0, error=error))
        self.results[run.name] = PipelineResult(outcome.status, outcome.duration, outcome.error)


def _run_status(results: Mapping[str, PipelineResult], control: RunControl) -> tuple[Status, str | None]:
    failed = [n for n, r in results.items() if r.status == Status.FAILED]
    if failed:
        return Status.FAILED, f"{len(failed)} pipeline(s) failed: {', '.join(failed)}"
    if control.cancelled or any(r.status == Status.CANCELLED for r in results.values()):
        return Status.CANCELLED, "cancelled"
    return Status.SUCCEEDED, None


async def run_project(
    project: ProjectSpec,
    *,
    sinks: Iterable[EventSink] = (),
    only: list[str] | None = None,
    variables: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: SecretResolver | None = None,
    data_root: Path | None = None,
    registry: PluginRegistry = default_registry,
    control: RunControl | None = None,
    network: EgressPolicy | None = None,
    outputs: KeepOutputs | None = None,
    resume: ResumeFrom | None = None,
    row_limit: int | None = None,
) -> RunResult:
    """Run the project's pipelines (or ``only`` those) and report every event to ``sinks``.

    ``variables`` override the project's (values already typed; ``${{ run.X }}`` is now and a new id unless
    they hold a ``parameters.RUN_CONTEXT``); ``env`` defaults to ``os.environ``;
    ``secrets`` defaults to the environment-backed resolver of the project's secrets document;
    ``data_root`` defaults to $PIPEDECK_DATA_ROOT, else the working directory; ``network`` (where steps
    may connect) defaults to no restriction. ``outputs``: what to keep of each step's output (summaries,
    Parquet files); ``resume``: the earlier run's kept outputs the pipelines resume from (ResumeRefused,
    before anything runs, when one cannot); ``row_limit``: a preview's limit on what extract steps read.
    """
    names = select_pipelines(project, only)
    points = None
    if resume is not None:
        from orchestrator.resume import plan_resume

        points = plan_resume(project, resume, only=names, variables=variables)
    env = os.environ if env is None else env
    control = control or RunControl()
    loop = asyncio.get_running_loop()
    redactor = Redactor()
    bus = EventBus(sinks, loop, redactor.redact)
    run_env = RunEnv(
        bus=bus,
        registry=registry,
        variables=with_run_context({**project.variables, **(variables or {})}),
        env=env,
        secrets=secrets or env_secret_resolver(project.secrets, env, registry=registry),
        secret_names=tuple(project.secrets),
        data_root=data_root or Path(env.get(DATA_ROOT_ENV) or Path.cwd()),
        redactor=redactor,
        network=network or EgressPolicy.open(),
        outputs=outputs,
        resume=points,
        row_limit=row_limit,
    )
    scheduler = _Scheduler(project, names, run_env, control)
    started = time.perf_counter()
    bus.emit(RunStarted(pipelines=names))
    control.attach(loop, scheduler.on_cancel)
    try:
        await scheduler.run()
    except asyncio.CancelledError:
        bus.emit(
            RunFinished(status=Status.CANCELLED, duration=time.perf_counter() - started, error="cancelled")
        )
        raise
    finally:
        control.detach()
    status, error = _run_status(scheduler.results, control)
    duration = time.perf_counter() - started
    bus.emit(RunFinished(status=status, duration=duration, error=error))
    pipelines = {n: scheduler.results[n] for n in names}
    return RunResult(status=status, duration=duration, pipelines=pipelines, error=error)


def run_project_sync(project: ProjectSpec, **options: Any) -> RunResult:
    """``run_project`` for callers without an event loop (takes the same keyword options)."""
    return asyncio.run(run_project(project, **options))
