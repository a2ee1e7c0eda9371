"""Checks beyond the spec's structure: references point at defined names, plugins exist, fit their slot,
and accept their arguments."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import Loc, Problem, format_path, problems_from_validation_error, suggest
from orchestrator.resolve import Reference, has_reference, iter_references, substitute_variables
from orchestrator.spec import PHASE_ORDER, ProjectSpec, StepSpec

if TYPE_CHECKING:
    from orchestrator.plugins.base import Plugin
    from orchestrator.plugins.registry import PluginRegistry

#: (phase, slot) -> (the plugin kind that fits, how the slot's need reads in a message)
SLOTS: dict[tuple[str, str], tuple[str, str]] = {
    ("extract", "pre"): ("pre", "extract pre steps need"),
    ("extract", "steps"): ("extract", "extract steps need"),
    ("extract", "merge"): ("merge", "the extract merge needs"),
    ("extract", "post"): ("post", "extract post steps need"),
    ("transform", "steps"): ("transform", "transform steps need"),
    ("load", "pre"): ("pre", "load pre steps need"),
    ("load", "steps"): ("load", "load steps need"),
    ("load", "post"): ("post", "load post steps need"),
    ("transform_at_load", "steps"): ("transform_at_load", "transform_at_load steps need"),
}


def validate_project(spec: ProjectSpec, registry: PluginRegistry) -> list[Problem]:
    """Every problem in ``spec`` that its pydantic model cannot see: references, plugins and their args."""
    data = spec.model_dump(exclude={"plugins"})
    return [*reference_problems(data, spec.variables, spec.secrets), *plugin_problems(spec, registry)]


def reference_problems(data: Any, variables: Collection[str], secrets: Collection[str]) -> list[Problem]:
    """Malformed references, and references to undefined variables or undeclared secrets, in ``data``."""
    return [
        Problem(message, format_path(loc))
        for loc, text in _strings(data, ())
        for message in _reference_messages(text, variables, secrets)
    ]


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        if "${{" in value:
            yield loc, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))


def _reference_messages(text: str, variables: Collection[str], secrets: Collection[str]) -> Iterator[str]:
    for ref in iter_references(text):
        if not isinstance(ref, Reference):
            yield str(ref)
        elif ref.kind == "variables" and ref.name not in variables:
            hint = suggest(ref.name, variables) or "; define it in a 'variables:' document before the project"
            yield f"variable '{ref.name}' is not defined{hint}"
        elif ref.kind == "secrets" and ref.name not in secrets:
            hint = suggest(ref.name, secrets) or "; declare it in a 'secrets:' document before the project"
            yield f"secret '{ref.name}' is not declared{hint}"


def plugin_problems(spec: ProjectSpec, registry: PluginRegistry) -> list[Problem]:
    """Unknown plugins, plugins in the wrong slot, and arguments their ``Args`` model refuses."""
    problems = []
    for loc, step, kind, slot in _steps(spec):
        problems += _step_problems(loc, step, kind, slot, spec.variables, registry)
    for name, secret in spec.secrets.items():
        step = StepSpec(plugin=secret.plugin, args=secret.args)
        problems += _step_problems(
            ("secrets", name), step, "secret", "secrets need", spec.variables, registry
        )
    return problems


def _steps(spec: ProjectSpec) -> Iterator[tuple[Loc, StepSpec, str, str]]:
    for name, pipeline in spec.pipelines.items():
        for phase_name in PHASE_ORDER:
            phase = pipeline.phase(phase_name)
            if phase is None:
                continue
            for slot in ("pre", "steps", "merge", "post"):
                if (phase_name.value, slot) not in SLOTS:
                    continue
                kind, label = SLOTS[(phase_name.value, slot)]
                loc: Loc = ("pipelines", name, "phases", phase_name.value, slot)
                value = getattr(phase, slot)
                if isinstance(value, StepSpec):
                    yield loc, value, kind, label
                elif value:
                    for i, step in enumerate(value):
                        yield (*loc, i), step, kind, label


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _step_problems(
    loc: Loc, step: StepSpec, kind: str, slot: str, variables: Mapping[str, Any], registry: PluginRegistry
) -> list[Problem]:
    from orchestrator.plugins.registry import UnknownPlugin

    try:
        cls = registry.get(step.plugin)
    except UnknownPlugin as exc:
        hint = (
            suggest(step.plugin, exc.known) or "; `python -m orchestrator plugins` lists the installed ones"
        )
        return [Problem(f"unknown plugin '{step.plugin}'{hint}", format_path((*loc, "plugin")))]
    if cls.kind.value != kind:
        message = (
            f"plugin '{step.plugin}' is {_article(cls.kind.value)} plugin; {slot} {_article(kind)} plugin"
        )
        return [Problem(message, format_path((*loc, "plugin")))]
    return args_problems(cls, step.args, variables, (*loc, "args"))


def args_problems(
    cls: type[Plugin], args: Mapping[str, Any], variables: Mapping[str, Any], loc: Loc
) -> list[Problem]:
    """Problems of ``args`` against the plugin's ``Args``, after substituting ``variables``.

    An argument whose value still holds an env or secret reference is not type-checked: its value is only
    known at run time.
    """
    resolved = substitute_variables(dict(args), variables)
    try:
        cls.Args.model_validate(resolved)
    except ValidationError as exc:
        pending = {k for k, v in resolved.items() if has_reference(v, ("env", "secrets", "variables"))}
        found = problems_from_validation_error(
            exc, prefix=loc, noun="argument", allowed=_allowed_args(cls.Args)
        )
        return [p for p, full in found if not (len(full) > len(loc) and full[len(loc)] in pending)]
    return []


def _allowed_args(model: type[BaseModel]) -> Any:
    def allowed(loc: Loc) -> list[str] | None:
        return list(model.model_fields) if not loc else None

    return allowed
