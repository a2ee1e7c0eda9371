"""``python -m orchestrator``: validate a project file, run it, or list the plugins.

Exit codes: 0 success, 1 a pipeline failed (or the run was cancelled), 2 invalid input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.errors import SpecError
from orchestrator.parameters import (
    RUN_CONTEXT,
    Parameter,
    ParameterError,
    check_values,
    load_parameters,
    reference_values,
    run_context,
)
from orchestrator.plugins.registry import PluginRegistry, registry
from orchestrator.resolve import apply_variable_overrides
from orchestrator.spec import Definitions, ProjectSpec
from orchestrator.yamlio import load_project

if TYPE_CHECKING:
    from orchestrator.outputs import KeepOutputs
    from orchestrator.resume import ResumeFrom

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
    run.add_argument(
        "--params",
        type=Path,
        metavar="FILE",
        help="the project's run parameters (YAML or JSON: name, type, default, description, required, "
        "choices of each); --var values are checked against them and typed",
    )
    run.add_argument(
        "--date",
        metavar="DATE",
        help="the run's logical date for ${{ run.date }} / ${{ run.datetime }} (YYYY-MM-DD or an ISO date "
        "and time; default: now)",
    )
    run.add_argument("--events", choices=["json"], help="print one JSON event per line instead of progress")
    run.add_argument(
        "--keep-outputs",
        type=Path,
        metavar="DIR",
        help="keep each step's output table in DIR as Parquet (after each extract step, the merge and each "
        "transform step), with a manifest per pipeline: a later run can --resume from it",
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="resume from the outputs an earlier run kept in DIR: pipelines that succeeded there are left "
        "out, the others start at their first step that did not succeed, reusing the kept outputs before "
        "it (refused when a step before it changed since); the new outputs are kept in DIR too, unless "
        "--keep-outputs names another",
    )
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
    except (SpecError, InvalidInput) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID


def _load(path: Path, plugin_registry: PluginRegistry, context: Definitions | None = None) -> ProjectSpec:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return load_project(text, source=str(path), registry=plugin_registry, context=context)


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--var expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value
    return overrides


def _parameters(path: Path) -> list[Parameter]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML or JSON: {exc}") from None
    try:
        return load_parameters(data if data is not None else [])
    except ParameterError as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def _typed(spec: ProjectSpec, overrides: dict[str, str], parameters: list[Parameter] | None) -> ProjectSpec:
    """The spec with the ``--var`` values: typed by the declared parameters (``--params``), the others read
    as YAML 1.2 scalars."""
    if parameters is None:
        return apply_variable_overrides(spec, overrides)
    declared = {p.name for p in parameters}
    spec = apply_variable_overrides(spec, {k: v for k, v in overrides.items() if k not in declared})
    try:
        typed = check_values(parameters, {k: v for k, v in overrides.items() if k in declared})
    except ParameterError as exc:
        raise InvalidInput(f"--var: {exc}") from None
    return spec.model_copy(update={"variables": {**spec.variables, **typed}}, deep=True)


def _logical(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"--date expects YYYY-MM-DD or an ISO date and time, got {text!r}") from None
    return {RUN_CONTEXT: run_context(uuid.uuid4().hex[:12], moment.astimezone())}


def _run(args: argparse.Namespace, plugin_registry: PluginRegistry) -> int:
    # The engine, asyncio and the printers load here: ``validate`` and ``plugins`` never need them.
    import asyncio

    from orchestrator.events import Status
    from orchestrator.progress import HumanProgress, JsonLines
    from orchestrator.resume import ResumeRefused
    from orchestrator.scheduler import UnknownPipelines, run_project

    parameters = _parameters(args.params) if args.params else None
    # a declared parameter is a defined variable: the file may use it without a value of its own
    context = Definitions(variables=reference_values(parameters)) if parameters else None
    spec = _typed(_load(args.file, plugin_registry, context), _overrides(args.var), parameters)
    variables = _logical(args.date)
    only, outputs, resume = _outputs_and_resume(args, spec)
    if args.events == "json":
        sink: JsonLines | HumanProgress = JsonLines(sys.stdout)
    else:
        sink = HumanProgress(sys.stdout, live=sys.stdout.isatty() and os.environ.get("TERM") != "dumb")
    coro = run_project(
        spec,
        sinks=[sink],
        only=only,
        registry=plugin_registry,
        variables=variables,
        outputs=outputs,
        resume=resume,
    )
    try:
        result = asyncio.run(coro)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UnknownPipelines, ResumeRefused) as exc:
        raise InvalidInput(str(exc)) from None
    return EXIT_OK if result.status == Status.SUCCEEDED else EXIT_FAILED


def _outputs_and_resume(
    args: argparse.Namespace, spec: ProjectSpec
) -> tuple[list[str] | None, KeepOutputs | None, ResumeFrom | None]:
    """The pipelines to run, what to keep of their outputs and where they resume from."""
    from orchestrator.outputs import KeepOutputs
    from orchestrator.resume import ResumeFrom, succeeded_pipelines

    only: list[str] | None = args.pipeline
    resume = None
    if args.resume is not None:
        if not args.resume.is_dir():
            raise InvalidInput(f"--resume {args.resume}: no such directory")
        resume = ResumeFrom(args.resume)
        done = set(succeeded_pipelines(args.resume, list(spec.pipelines)))
        if only is None:
            only = [name for name in spec.pipelines if name not in done]
            if not only:
                raise InvalidInput(f"nothing to resume: every pipeline succeeded in {args.resume}")
        elif again := [name for name in only if name in done]:
            raise InvalidInput(
                f"nothing to resume for {', '.join(again)}: it succeeded in {args.resume} "
                "(run without --resume to run it again)"
            )
    directory = args.keep_outputs or args.resume
    return only, (KeepOutputs(directory=directory) if directory is not None else None), resume


def _plugins(as_json: bool, plugin_registry: PluginRegistry) -> int:
    plugins = plugin_registry.all()
    if as_json:
        print(json.dumps([plugin_registry.describe(p.name) for p in plugins], indent=2, default=str))
        return EXIT_OK
    width = max((len(p.name) for p in plugins), default=0)
    for p in plugins:
        print(f"{p.name:<{width}}  {p.kind.value:<17}  {p.description}")
    return EXIT_OK


def __getattr__(name: str) -> Any:
    # the printers moved to orchestrator.progress; they stay importable from here
    if name in ("HumanProgress", "JsonLines"):
        from orchestrator import progress

        return getattr(progress, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
