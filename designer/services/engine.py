"""The designer's only door into the engine: validation, YAML dump and load, the plugin registry.

The engine (``orchestrator``) is the single source of truth for what is valid; this module adapts its
results into plain dicts the models store and the templates show.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from designer.runs import isolation
from orchestrator import yamlio
from orchestrator.errors import Problem, SpecError, problems_from_validation_error
from orchestrator.plugins.base import PluginKind
from orchestrator.plugins.registry import registry
from orchestrator.spec import PHASES_BY_TYPE, PipelineSpec, PipelineType, ProjectSpec, SecretSpec

#: the plugin kind of each phase's ``steps`` (its merge, pre and post slots take the kinds of those names)
PHASE_KINDS: dict[str, PluginKind] = {
    "extract": PluginKind.EXTRACT,
    "transform": PluginKind.TRANSFORM,
    "load": PluginKind.LOAD,
    "transform_at_load": PluginKind.TRANSFORM_AT_LOAD,
}
#: slots each phase has, in display order
PHASE_SLOTS: dict[str, tuple[str, ...]] = {
    "extract": ("pre", "steps", "merge", "post"),
    "transform": ("steps",),
    "load": ("pre", "steps", "post"),
    "transform_at_load": ("steps",),
}
STEP_KINDS = [k for k in PluginKind if k is not PluginKind.SECRET]


def slot_kind(phase: str, slot: str) -> PluginKind:
    """The plugin kind a slot accepts (``extract.steps`` -> extract, ``load.pre`` -> pre...)."""
    return PHASE_KINDS[phase] if slot == "steps" else PluginKind(slot)


def allowed_phases(pipeline_type: str) -> list[str]:
    """The phases a pipeline type allows, in order."""
    try:
        rules = PHASES_BY_TYPE[PipelineType(pipeline_type)]
    except ValueError:
        return ["extract", "load"]
    return [p.value for p in rules]


def required_phases(pipeline_type: str) -> list[str]:
    """The phases a pipeline type requires."""
    try:
        rules = PHASES_BY_TYPE[PipelineType(pipeline_type)]
    except ValueError:
        return []
    return [p.value for p, required in rules.items() if required]


@dataclass
class Checked:
    """The outcome of validating a pipeline: the normalised spec when valid, else the problems."""

    spec: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


def problem_dict(problem: Problem, strip: str = "") -> dict[str, Any]:
    """A Problem as a JSON-able dict, its path relative to ``strip`` (e.g. ``pipelines.orders.``)."""
    path = problem.path
    if strip and path.startswith(strip):
        path = path[len(strip) :].lstrip(".")
    elif strip and path == strip.rstrip("."):
        path = ""
    return {"message": problem.message, "path": path, "line": problem.line, "column": problem.column}


def _validate_project(spec: ProjectSpec) -> list[Problem]:
    from orchestrator.validate import validate_project

    return list(validate_project(spec, registry, policy=isolation.run_policy()))


def context_spec(
    pipelines: dict[str, PipelineSpec], variables: dict[str, Any] | None, secrets: Iterable[str] | None
) -> ProjectSpec:
    """A ProjectSpec for validation: the project's variables, every known secret name declared."""
    return ProjectSpec(
        variables=dict(variables or {}),
        secrets={
            name: SecretSpec(plugin="env_secret", args={"name": name}) for name in sorted(set(secrets or ()))
        },
        pipelines=pipelines,
    )


def validate_pipeline(
    name: str,
    spec: dict[str, Any],
    known_pipelines: set[str] | None = None,
    variables: dict[str, Any] | None = None,
    secrets: Iterable[str] | None = None,
) -> Checked:
    """Validate one pipeline's spec dict with the engine.

    ``known_pipelines`` are the valid ``needs`` targets; ``variables`` and ``secrets`` (names) are what
    its references may use.
    """
    prefix = f"pipelines.{name}."
    try:
        parsed = PipelineSpec.model_validate(spec)  # pydantic builds new objects: ``spec`` is not changed
    except ValidationError as exc:
        problems = [p for p, _loc in problems_from_validation_error(exc)]
        problems += draft_step_problems(spec, variables or {})
        return Checked(spec=spec, errors=[problem_dict(p) for p in problems])
    errors: list[dict[str, Any]] = []
    if known_pipelines is not None:
        for need in parsed.needs:
            if need not in known_pipelines:
                errors.append(
                    {"message": f"needs '{need}', which is not a pipeline of this project", "path": "needs"}
                )
    project = context_spec({name: parsed.model_copy(update={"needs": []})}, variables, secrets)
    errors += [problem_dict(p, prefix) for p in _validate_project(project) if p.path.startswith(prefix)]
    return Checked(spec=parsed.model_dump(mode="json"), errors=errors)


def draft_step_problems(spec: dict[str, Any], variables: dict[str, Any]) -> list[Problem]:
    """Plugin and argument problems of each step of a draft the spec model refuses as a whole.

    The engine checks plugins only once the structure is valid; a draft still shows them step by step.
    """
    from orchestrator.validate import args_problems

    problems: list[Problem] = []
    for phase, body in (spec.get("phases") or {}).items():
        if not isinstance(body, dict) or phase not in PHASE_SLOTS:
            continue
        for slot in PHASE_SLOTS[phase]:
            value = body.get(slot)
            steps: list[tuple[tuple[str | int, ...], Any]] = (
                [(("phases", phase, slot), value)] if slot == "merge" and value else []
            )
            if slot != "merge" and isinstance(value, list):
                steps = [(("phases", phase, slot, i), step) for i, step in enumerate(value)]
            for loc, step in steps:
                plugin = step.get("plugin") if isinstance(step, dict) else None
                if not isinstance(plugin, str) or plugin not in registry:
                    continue
                cls = registry.get(plugin)
                if cls.kind != slot_kind(phase, slot):
                    continue  # reported once the structure is valid
                args = step.get("args") or {}
                if isinstance(args, dict):
                    problems += args_problems(cls, args, variables, (*loc, "args"))
    return problems


def pipeline_spec(spec: dict[str, Any]) -> PipelineSpec:
    """The pydantic spec of a stored (valid) pipeline dict."""
    return PipelineSpec.model_validate(copy.deepcopy(spec))


def draft_yaml(name: str, spec: dict[str, Any]) -> str:
    """A plain YAML dump of a draft that does not validate (for the YAML tab and diffs)."""
    body = yaml.safe_dump({"pipelines": {name: spec}}, sort_keys=False, allow_unicode=True, width=1 << 30)
    return "# draft: this pipeline does not validate yet\n" + body


def dump_pipeline_yaml(
    name: str,
    spec: dict[str, Any],
    variables: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    concurrency: int = 2,
) -> str:
    """One pipeline's YAML as the engine writes it: a project file with it and what it references."""
    try:
        parsed = pipeline_spec(spec)
    except ValidationError:
        return draft_yaml(name, spec)
    project = ProjectSpec.model_construct(
        variables=dict(variables or {}),
        secrets={k: SecretSpec.model_validate(v) for k, v in (secrets or {}).items()},
        concurrency=concurrency,
        pipelines={name: parsed},
        plugins=None,
    )
    return yamlio.dump_pipeline(project, name)


def dump_project_yaml(project: ProjectSpec) -> str:
    """The project file as the engine writes it."""
    return yamlio.dump_project(project)


def load_project_yaml(text: str | bytes, source: str = "<upload>") -> ProjectSpec:
    """Parse and fully validate a project file; raises SpecError listing every problem with its place."""
    return yamlio.load_project(text, source=source, registry=registry, policy=isolation.run_policy())


_MISSING = re.compile(r"^(variable|secret) '([A-Za-z_][A-Za-z0-9_]*)' is not (?:defined|declared)")


def load_with_context(
    text: str | bytes, variables: dict[str, Any], secrets: Iterable[str], source: str = "<yaml>"
) -> tuple[ProjectSpec, dict[str, set[str]]]:
    """Load a project file whose references may also use the project's (team's) variables and secrets.

    Names the file uses without defining them are taken from the context: a definitions document is put
    in front and the line numbers of any remaining problem are shifted back. Returns the spec and the
    names taken from the context (``{"variables": ..., "secrets": ...}``), which are not the file's own.
    """
    taken: dict[str, set[str]] = {"variables": set(), "secrets": set()}
    try:
        return load_project_yaml(text, source), taken
    except SpecError as exc:
        known = {"variable": set(variables), "secret": set(secrets)}
        for problem in exc.problems:
            match = _MISSING.match(problem.message)
            if match and match[2] in known[match[1]]:
                taken[f"{match[1]}s"].add(match[2])
        if not any(taken.values()):
            raise
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecError([Problem("the file is not UTF-8 text")], source) from None
    head = []
    if taken["variables"]:
        head.append(json.dumps({"variables": {k: variables[k] for k in sorted(taken["variables"])}}))
    if taken["secrets"]:
        declared = {k: {"plugin": "env_secret", "args": {"name": k}} for k in sorted(taken["secrets"])}
        head.append(json.dumps({"secrets": declared}))
    prefix = "".join(f"{doc}\n---\n" for doc in head)
    offset = prefix.count("\n")
    try:
        return load_project_yaml(prefix + text, source), taken
    except SpecError as exc:
        shifted = [
            Problem(p.message, p.path, None if p.line is None else max(1, p.line - offset), p.column)
            for p in exc.problems
        ]
        raise SpecError(shifted, source) from None
