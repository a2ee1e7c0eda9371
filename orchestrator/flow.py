"""One pipeline's outputs during its run: each table-producing step's output summarised (and kept as
Parquet when asked), and, on a resume, the steps reused from an earlier run's kept outputs.

The engine calls ``after_table`` in the thread that ran the step (the loop for extract steps is spared:
they call it through ``asyncio.to_thread``), ``after_step`` for the others, ``reuse`` on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.dataflow import Prints, fingerprints, places, start_inputs, step_key
from orchestrator.events import Status, StepFinished
from orchestrator.outputs import (
    KeepOutputs,
    Manifest,
    StepOutput,
    file_name,
    link_or_copy,
    pipeline_folder,
    read_frame,
    summarize,
    summarize_file,
    write_frame,
)
from orchestrator.parameters import RUN_CONTEXT
from orchestrator.plugins.expressions import polars_errors
from orchestrator.resume import SUCCEEDED, ResumePoint, reusable_extract_steps
from orchestrator.spec import PipelineSpec, StepSpec

if TYPE_CHECKING:
    from orchestrator.plugins.base import Frame, StepContext
    from orchestrator.steps import RunEnv

log = logging.getLogger(__name__)


class PipelineFlow:
    """What a pipeline's run does with its steps' outputs besides handing them on."""

    def __init__(self, name: str, spec: PipelineSpec, env: RunEnv) -> None:
        self.name = name
        self.env = env
        self.options: KeepOutputs | None = env.outputs
        self.point: ResumePoint | None = (env.resume or {}).get(name)
        self.places = {p.key: p for p in places(spec)}
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.reused = frozenset(self.point.reused if self.point else ())
        start = self.places.get(self.point.start) if self.point else None
        #: resuming from an extract step: its siblings whose kept outputs fit are reused too
        self.siblings = frozenset(
            reusable_extract_steps(self.point, spec)
            if self.point and start and start.phase == "extract" and start.slot == "steps"
            else ()
        )
        #: the steps whose kept tables the first step that runs reads
        self.input_keys = frozenset(start_inputs(spec, start.key) if start else [])
        self.folder: Path | None = None
        self.manifest: Manifest | None = None
        if self.options is not None and self.options.directory is not None:
            folder = pipeline_folder(self.options.directory, name)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("the outputs of %s are not kept: %s", name, exc)
            else:
                self.folder = folder
                self.manifest = Manifest(folder, name, list(self.places))
        self.prints: Prints | None = None
        if self.point is not None:
            self.prints = self.point.prints
        elif self.manifest is not None:
            variables = {k: v for k, v in env.variables.items() if k != RUN_CONTEXT}
            self.prints = fingerprints(spec, variables)

    # -- a step that ran -------------------------------------------------------------------------------

    def after_table(self, ctx: StepContext, frame: Frame) -> tuple[Frame, int | None]:
        """Summarise (and keep) a step's table; the table to hand on, and its rows when known. A table
        that cannot be computed fails the step; a file that cannot be written is only logged."""
        key = step_key(ctx.phase, ctx.step_id)
        place = (self.name, ctx.phase, ctx.step_id)
        options = self.options
        if options is None:
            return frame, None
        summary: StepOutput | None = None
        if self.folder is not None:
            target = self.folder / file_name(key)
            try:
                with polars_errors(what="computing the output to keep it"):
                    frame = write_frame(frame, target, options.compression)
            except OSError as exc:
                ctx.logger.warning("its output was not kept: %s", exc)
                target = None  # type: ignore[assignment]
            if target is not None:
                summary = self._summary(lambda: self._summarize_kept(frame, target, place), key)
                self._record(key, file=target.name, rows=summary.rows if summary else None)
        if summary is None:
            summary = self._summary(lambda: summarize(frame, options, place=place), key)
        if summary is not None:
            self._deliver(summary)
        return frame, summary.rows if summary is not None else None

    def _summarize_kept(self, frame: Frame, target: Path, place: tuple[str, str, str]) -> StepOutput:
        assert self.options is not None
        if hasattr(frame, "height"):  # eager: counting is free
            return summarize(frame, self.options, place=place, kept=target.name)
        return summarize_file(target, self.options, place=place, kept=target.name)

    @staticmethod
    def _summary(make: Any, key: str) -> StepOutput | None:
        try:
            return make()  # type: ignore[no-any-return]
        except Exception:  # a summary is for people: it never fails the step
            log.warning("could not summarise the output of %s", key, exc_info=True)
            return None

    def after_step(self, ctx: StepContext) -> None:
        """A step without a table succeeded: the manifest says so (a later run may resume after it)."""
        if self.manifest is not None:
            self._record(step_key(ctx.phase, ctx.step_id))

    def _record(
        self, key: str, *, file: str | None = None, rows: int | None = None, status: str = SUCCEEDED
    ) -> None:
        if self.manifest is None or self.prints is None:
            return
        entry = {"own": self.prints.own[key], "chain": self.prints.chain[key], "status": status, "file": file}
        self.manifest.record(key, {**entry, "rows": rows})

    def finish(self, status: Status) -> None:
        if self.manifest is not None:
            try:
                self.manifest.finish(status.value)
            except OSError:
                log.warning("could not write the manifest of %s", self.name, exc_info=True)

    def _deliver(self, summary: StepOutput) -> None:
        assert self.options is not None
        callback = self.options.on_output
        if callback is None:
            return
        if self.env.redactor:  # a secret the run resolved never shows in a sample either
            summary = dataclasses.replace(summary, sample=self.env.redactor.redact_value(summary.sample))
        if threading.get_ident() == self._loop_thread:
            callback(summary)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: this thread was abandoned
                self.loop.call_soon_threadsafe(callback, summary)

    # -- steps a resume does not run -------------------------------------------------------------------

    @property
    def resuming(self) -> bool:
        return self.point is not None

    def is_reused(self, phase: str, step: StepSpec) -> bool:
        key = step_key(phase, step.id)
        return key in self.reused or key in self.siblings

    def all_reused(self, phase: str, steps: Sequence[StepSpec]) -> bool:
        return bool(steps) and all(self.is_reused(phase, s) for s in steps)

    async def reuse(self, phase: str, steps: Sequence[StepSpec]) -> dict[str, Frame]:
        """Report ``steps`` as reused and carry their kept outputs over; the tables the run reads next
        (by step id): those of the steps whose output the first step that runs reads."""
        assert self.point is not None
        tables: dict[str, Frame] = {}
        for step in steps:
            key = step_key(phase, step.id)
            kept = self.point.kept_file(key)
            summary = None
            if kept is not None:
                summary = await asyncio.to_thread(self._carry_over, key, kept)
                if key in self.input_keys or key in self.siblings:
                    tables[step.id] = await asyncio.to_thread(read_frame, kept)
            elif self.manifest is not None:
                self._record(key)
            if summary is not None:
                self._deliver(summary)
            rows = self.point.rows(key)
            self.env.bus.emit(
                StepFinished.fast(
                    pipeline=self.name,
                    phase=phase,
                    step=step.id,
                    plugin=step.plugin,
                    status=Status.REUSED,
                    duration=0.0,
                    rows_in=None,
                    rows_out=rows,
                    error=None,
                    attempt=0,
                )
            )
        return tables

    def _carry_over(self, key: str, kept: Path) -> StepOutput | None:
        """Link a reused step's kept file into this run's outputs; its summary."""
        name = kept.name
        if self.folder is not None:
            try:
                link_or_copy(kept, self.folder / name)
                kept = self.folder / name
            except OSError:
                log.warning("could not carry the kept output of %s over", key, exc_info=True)
        self._record(
            key,
            file=name if self.folder is not None else None,
            rows=self.point.rows(key) if self.point else None,
        )
        options = self.options
        if options is None:
            return None
        place = (self.name, self.places[key].phase, self.places[key].step.id)
        return self._summary(lambda: summarize_file(kept, options, place=place, kept=name, reused=True), key)


def flow_for(name: str, spec: PipelineSpec, env: RunEnv) -> PipelineFlow | None:
    """The pipeline's flow, or None when the run neither keeps outputs nor resumes it (the engine's
    fast path: nothing is added to a step then)."""
    if env.outputs is None and not (env.resume and name in env.resume):
        return None
    return PipelineFlow(name, spec, env)
