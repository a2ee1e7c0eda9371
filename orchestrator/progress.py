"""What ``python -m orchestrator run`` prints: live progress for people, one JSON event per line for
machines. Both are event sinks (``orchestrator.events.EventSink``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import TextIO

from orchestrator.events import (
    Event,
    PhaseStarted,
    PipelineEvent,
    PipelineFinished,
    PipelineStarted,
    RunFinished,
    Status,
    StepFinished,
    StepLog,
    StepProgress,
    StepStarted,
)


def _write(out: TextIO, text: str) -> None:
    """Write and flush; when the reader went away (``| head``), keep running silently."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        # Python's documented recipe: point the descriptor at devnull so later writes are discarded too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())


class _PerLoopTurn:
    """Text for ``out``, written and flushed once per turn of the event loop (at once outside a run):
    the events of a batch reach the reader together, and a write and a flush per event would cost more
    than the event itself."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        if len(self.parts) > 1:  # the flush is scheduled already
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a run
            self.flush()
            return
        loop.call_soon(self.flush)

    def flush(self) -> None:
        if self.parts:
            text = "".join(self.parts)
            self.parts.clear()
            _write(self.out, text)


class JsonLines:
    """``--events json``: one event per line, for machines; flushed once per turn of the event loop."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._pending = _PerLoopTurn(out)

    def __call__(self, event: Event) -> None:
        self._pending.add(event.to_json() + "\n")

    def flush(self) -> None:
        """Write and flush what is pending."""
        self._pending.flush()


class HumanProgress:
    """Progress for people. On a terminal: a live block with a line per running pipeline and its steps,
    redrawn in place; logs, finished pipelines (with their failed steps) and the summary scroll above it.
    Otherwise: plain lines, one per event worth keeping."""

    REDRAW_EVERY = 0.1  # seconds; the final state is always drawn

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        #: pipeline -> {step ("" for the pipeline itself) -> line}, for the running pipelines
        self.running: dict[str, dict[str, str]] = {}
        self.failed_steps: set[tuple[str, str]] = set()
        self.drawn = 0
        self.last_draw = 0.0
        self._pending = _PerLoopTurn(out)

    def __call__(self, event: Event) -> None:
        line = self._describe(event)
        if not self.live:
            text = self._plain(event, line)
            if text is not None:
                self._pending.add(text + "\n")
            return
        if isinstance(event, StepLog):
            self._print_above([self._log_line(event)])
        elif isinstance(event, PipelineFinished):
            self._print_above(self._finished_pipeline(event, line or ""))
        elif isinstance(event, RunFinished):
            self._clear()
            self.running.clear()
            _write(self.out, self._summary(event) + "\n")
        elif line is not None and isinstance(event, PipelineEvent):
            step = getattr(event, "step", "")
            self.running.setdefault(event.pipeline, {})[step] = line
            if isinstance(event, StepFinished | StepStarted):
                key = (event.pipeline, step)
                if isinstance(event, StepFinished) and event.status == Status.FAILED:
                    self.failed_steps.add(key)
                else:
                    self.failed_steps.discard(key)
            self._redraw()

    @staticmethod
    def _describe(event: Event) -> str | None:
        """The live line for the pipeline or step ``event`` concerns, or None when it changes none."""
        if isinstance(event, PipelineStarted):
            return f"{event.pipeline}: running"
        if isinstance(event, PhaseStarted):
            return f"{event.pipeline}: running {event.phase}"
        if isinstance(event, PipelineFinished):
            return f"{event.pipeline}: {event.status.value} in {event.duration:.2f} s"
        if isinstance(event, StepStarted):
            retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"  {event.pipeline} {event.phase}/{event.step}: running{retry}"
        if isinstance(event, StepProgress):
            total = f"/{event.total}" if event.total is not None else ""
            return f"  {event.pipeline} {event.phase}/{event.step}: {event.rows}{total} rows"
        if isinstance(event, StepFinished):
            n = event.rows_out
            rows = "" if n is None else f", {n} row{'s' if n != 1 else ''}"
            took = f"{event.status.value} in {event.duration:.2f} s"
            if event.status == Status.REUSED:
                took = "reused (an earlier run's kept output)"
            return f"  {event.pipeline} {event.phase}/{event.step}: {took}{rows}"
        return None

    @staticmethod
    def _log_line(event: StepLog) -> str:
        return f"  {event.pipeline} {event.phase}/{event.step} [{event.level}] {event.message}"

    def _plain(self, event: Event, line: str | None) -> str | None:
        if isinstance(event, StepLog):
            return self._log_line(event)
        if isinstance(event, StepProgress | PhaseStarted):
            return None  # too chatty for a log file
        if isinstance(event, PipelineFinished) and event.error:
            return f"{line}\n  {event.error}"
        if isinstance(event, RunFinished):
            return self._summary(event)
        return line

    @staticmethod
    def _summary(event: RunFinished) -> str:
        return f"run {event.status.value} in {event.duration:.2f} s" + (
            f": {event.error}" if event.error else ""
        )

    def _finished_pipeline(self, event: PipelineFinished, line: str) -> list[str]:
        """The lines a finished pipeline leaves behind; it leaves the live block."""
        steps = self.running.pop(event.pipeline, {})
        kept = [line, *(text for step, text in steps.items() if (event.pipeline, step) in self.failed_steps)]
        if event.error and event.status != Status.SUCCEEDED:
            kept.append(f"  {event.error}")
        return kept

    def _print_above(self, lines: list[str]) -> None:
        self._clear()
        _write(self.out, "".join(line + "\n" for line in lines))
        self._redraw(force=True)

    def _clear(self) -> None:
        if self.drawn:
            _write(self.out, f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _redraw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < self.REDRAW_EVERY:
            return
        self.last_draw = now
        self._clear()
        size = shutil.get_terminal_size()
        block = [line for steps in self.running.values() for line in steps.values()]
        if len(block) > size.lines - 1:  # lines scrolled off the top could not be redrawn
            hidden = len(block) - (size.lines - 2)
            block = [*block[: size.lines - 2], f"  ... and {hidden} more"]
        # a line wider than the terminal would wrap and break the count of lines to move up over
        _write(self.out, "".join(line[: size.columns - 1] + "\n" for line in block))
        self.drawn = len(block)
