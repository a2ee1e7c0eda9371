"""``python -m orchestrator``: validate a project file, run it, or list the plugins.

Exit codes: 0 success, 1 a pipeline failed (or the run was cancelled), 2 invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from orchestrator.errors import SpecError
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
from orchestrator.plugins.registry import PluginRegistry, registry
from orchestrator.resolve import apply_variable_overrides
from orchestrator.scheduler import UnknownPipelines, run_project
from orchestrator.spec import ProjectSpec
from orchestrator.yamlio import load_project

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


class InvalidInput(Exception):
    """Bad command-line input: printed, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description="Run pipeline-flow projects.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a project file and report every problem")
    validate.add_argument("file", type=Path)
    run = commands.add_parser("run", help="run a project's pipelines")
    run.add_argument("file", type=Path)
    run.add_argument(
        "--pipeline",
        action="append",
        metavar="NAME",
        help="run only this pipeline (repeatable); its needs outside the selection count as satisfied",
    )
    run.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="override a variable")
    run.add_argument("--events", choices=["json"], help="print one JSON event per line instead of progress")
    plugins = commands.add_parser("plugins", help="list the installed plugins")
    plugins.add_argument(
        "--json", action="store_true", help="print names, kinds and argument schemas as JSON"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, plugin_registry: PluginRegistry = registry) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            spec = _load(args.file, plugin_registry)
            names = ", ".join(spec.pipelines)
            print(f"{args.file}: valid ({len(spec.pipelines)} pipeline(s): {names})")
            return EXIT_OK
        if args.command == "run":
            return _run(args, plugin_registry)
        return _plugins(args.json, plugin_registry)
    except (SpecError, InvalidInput, UnknownPipelines) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID


def _load(path: Path, plugin_registry: PluginRegistry) -> ProjectSpec:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return load_project(text, source=str(path), registry=plugin_registry)


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--var expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value
    return overrides


def _run(args: argparse.Namespace, plugin_registry: PluginRegistry) -> int:
    spec = apply_variable_overrides(_load(args.file, plugin_registry), _overrides(args.var))
    if args.events == "json":
        sink: JsonLines | HumanProgress = JsonLines(sys.stdout)
    else:
        sink = HumanProgress(sys.stdout, live=sys.stdout.isatty() and os.environ.get("TERM") != "dumb")
    coro = run_project(spec, sinks=[sink], only=args.pipeline, registry=plugin_registry)
    try:
        result = asyncio.run(coro)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_OK if result.status == Status.SUCCEEDED else EXIT_FAILED


def _plugins(as_json: bool, plugin_registry: PluginRegistry) -> int:
    plugins = plugin_registry.all()
    if as_json:
        print(json.dumps([plugin_registry.describe(p.name) for p in plugins], indent=2, default=str))
        return EXIT_OK
    width = max((len(p.name) for p in plugins), default=0)
    for p in plugins:
        print(f"{p.name:<{width}}  {p.kind.value:<17}  {p.description}")
    return EXIT_OK


def _write(out: TextIO, text: str) -> None:
    """Write and flush; when the reader went away (``| head``), keep running silently."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        # Python's documented recipe: point the descriptor at devnull so later writes are discarded too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())


class JsonLines:
    """``--events json``: one event per line, for machines; flushed once per turn of the event loop."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._flush_pending = False

    def __call__(self, event: Event) -> None:
        try:
            self.out.write(event.to_json() + "\n")
        except BrokenPipeError:
            _write(self.out, "")  # the reader went away: discard from now on
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a run: flush now
            self.flush()
            return
        self._flush_pending = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Flush what was written (every event of a batch reaches the reader together)."""
        self._flush_pending = False
        _write(self.out, "")


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

    def __call__(self, event: Event) -> None:
        line = self._describe(event)
        if not self.live:
            text = self._plain(event, line)
            if text is not None:
                _write(self.out, text + "\n")
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
