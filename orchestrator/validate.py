"""Checks beyond the spec's structure: references point at defined names, plugins exist, fit their slot,
and accept their arguments."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import Loc, Problem, format_path, problems_from_validation_error, suggest
from orchestrator.phases import PHASE_ORDER, PHASE_SLOTS, PhaseName
from orchestrator.policy import RunPolicy
from orchestrator.resolve import (
    KINDS,
    Reference,
    has_reference,
    iter_references,
    secret_refused_message,
    substitute_variables,
)
from orchestrator.spec import Definitions, PipelineSpec, ProjectSpec, SecretSpec, StepSpec

if TYPE_CHECKING:
    from orchestrator.plugins.base import Plugin
    from orchestrator.plugins.registry import PluginRegistry


def validate_project(
    spec: ProjectSpec, registry: PluginRegistry, *, policy: RunPolicy | None = None
) -> list[Problem]:
    """Every problem in ``spec`` that its pydantic model cannot see: references, plugins and their args,
    and what the site's ``policy`` would refuse at run time (default: the CLI's, which allows all)."""
    policy = policy or RunPolicy()
    data = spec.model_dump(exclude={"plugins"})
    return [
        *reference_problems(data, spec.variables, spec.secrets, policy.env_allowed),
        *plugin_problems(spec, registry, policy),
    ]


def pipeline_problems(
    name: str,
    data: Mapping[str, Any],
    registry: PluginRegistry,
    *,
    context: Definitions | None = None,
    pipelines: Collection[str] | None = None,
    policy: RunPolicy | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> tuple[PipelineSpec | None, list[Problem]]:
    """One pipeline (its spec as a dict) checked as it would be inside its project: the spec, when its
    structure is valid, and every problem, with paths relative to the pipeline (``phases.load.steps[0]``).

    ``context``: the variables and secrets its references may use; ``pipelines``: the names its ``needs``
    may name (None: not checked); ``columns``: the output columns of the steps whose schema is known
    (``{"extract.read": ["id", ...]}`` or ``{"read": [...]}``), to check the columns SQL names (none known:
    not checked). A draft whose structure is not valid yet still gets its steps' problems.
    """
    context = context or Definitions()
    try:
        parsed = PipelineSpec.model_validate(dict(data))  # a copy: ``data`` is not changed
    except ValidationError as exc:
        problems = [p for p, _ in problems_from_validation_error(exc)]
        return None, problems + _draft_step_problems(data, context.variables, registry, policy)
    problems = [
        Problem(f"needs '{need}', which is not a pipeline of this project", "needs")
        for need in parsed.needs
        if pipelines is not None and need not in pipelines
    ]
    project = ProjectSpec(
        variables=dict(context.variables),
        secrets={n: SecretSpec(args={"name": n}) for n in sorted(set(context.secrets))},
        pipelines={name: parsed.model_copy(update={"needs": []})},
    )
    prefix = f"pipelines.{name}"
    for problem in validate_project(project, registry, policy=policy):
        if problem.path == prefix or problem.path.startswith((f"{prefix}.", f"{prefix}[")):
            relative = problem.path[len(prefix) :].lstrip(".")
            problems.append(Problem(problem.message, relative, problem.line, problem.column))
    if columns:
        from orchestrator.sqlcheck import column_problems

        problems += column_problems(parsed, registry, columns)
    return parsed, problems


def _draft_step_problems(
    data: Mapping[str, Any],
    variables: Mapping[str, Any],
    registry: PluginRegistry,
    policy: RunPolicy | None,
) -> list[Problem]:
    """Plugin and argument problems of each step of a draft the spec model refuses as a whole (the
    engine checks plugins once the structure is valid; a draft still shows them step by step)."""
    problems: list[Problem] = []
    for phase, body in (data.get("phases") or {}).items():
        if not isinstance(body, Mapping) or phase not in PHASE_SLOTS:
            continue
        for slot, kind in PHASE_SLOTS[PhaseName(phase)].items():
            value = body.get(slot)
            located: list[tuple[Loc, Any]] = [(("phases", phase, slot), value)] if slot == "merge" else []
            if slot != "merge" and isinstance(value, list):
                located = [(("phases", phase, slot, i), step) for i, step in enumerate(value)]
            for loc, step in located:
                plugin = step.get("plugin") if isinstance(step, Mapping) else None
                if not isinstance(plugin, str) or plugin not in registry:
                    continue
                cls = registry.get(plugin)
                args = step.get("args") or {}
                if cls.kind == kind and isinstance(args, Mapping):  # a wrong kind: reported once valid
                    problems += args_problems(cls, args, variables, (*loc, "args"), policy)
    return problems


def reference_problems(
    data: Any,
    variables: Collection[str],
    secrets: Collection[str],
    env_allowed: Collection[str] | None = None,
) -> list[Problem]:
    """Malformed references, and references to undefined variables, undeclared secrets or environment
    variables runs may not read, in ``data``."""
    return [
        Problem(message, format_path(loc))
        for loc, text in _strings(data, ())
        for message in _reference_messages(text, variables, secrets, env_allowed)
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


def _reference_messages(
    text: str, variables: Collection[str], secrets: Collection[str], env_allowed: Collection[str] | None
) -> Iterator[str]:
    for ref in iter_references(text):
        if not isinstance(ref, Reference):
            yield str(ref)
        elif ref.kind == "variables" and ref.name not in variables:
            hint = suggest(ref.name, variables) or "; define it in a 'variables:' document before the project"
            yield f"variable '{ref.name}' is not defined{hint}"
        elif ref.kind == "secrets" and ref.name not in secrets:
            hint = suggest(ref.name, secrets) or "; declare it in a 'secrets:' document before the project"
            yield f"secret '{ref.name}' is not declared{hint}"
        elif ref.kind == "env" and env_allowed is not None and ref.name not in env_allowed:
            allowed = ", ".join(sorted(env_allowed)) or "none"
            yield (
                f"environment variable '{ref.name}' is not available to runs on this site (allowed: "
                f"{allowed}); use a variable or a team secret, or ask the operator to add it to "
                "PIPEDECK_RUN_ENV_ALLOW"
            )


def plugin_problems(
    spec: ProjectSpec, registry: PluginRegistry, policy: RunPolicy | None = None
) -> list[Problem]:
    """Unknown plugins, plugins in the wrong slot, arguments their ``Args`` model refuses, and arguments
    a run would refuse under ``policy``."""
    policy = policy or RunPolicy()
    problems = []
    for loc, step, kind, slot in _steps(spec):
        problems += _step_problems(loc, step, kind, slot, spec.variables, registry, policy)
    for name, secret in spec.secrets.items():
        step = StepSpec(plugin=secret.plugin, args=secret.args)
        problems += _step_problems(
            ("secrets", name), step, "secret", "secrets need", spec.variables, registry, policy
        )
    return problems


def _steps(spec: ProjectSpec) -> Iterator[tuple[Loc, StepSpec, str, str]]:
    for name, pipeline in spec.pipelines.items():
        for phase_name in PHASE_ORDER:
            phase = pipeline.phase(phase_name)
            if phase is None:
                continue
            for slot, kind in PHASE_SLOTS[phase_name].items():
                loc: Loc = ("pipelines", name, "phases", phase_name.value, slot)
                value = getattr(phase, slot)
                label = _slot_label(phase_name, slot)
                if isinstance(value, StepSpec):
                    yield loc, value, kind.value, label
                elif value:
                    for i, step in enumerate(value):
                        yield (*loc, i), step, kind.value, label


def _slot_label(phase: PhaseName, slot: str) -> str:
    """How a slot's need reads in a message: "extract steps need", "the extract merge needs"..."""
    if slot == "merge":
        return f"the {phase.value} merge needs"
    return f"{phase.value} {'' if slot == 'steps' else slot + ' '}steps need"


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _step_problems(
    loc: Loc,
    step: StepSpec,
    kind: str,
    slot: str,
    variables: Mapping[str, Any],
    registry: PluginRegistry,
    policy: RunPolicy,
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
    return args_problems(cls, step.args, variables, (*loc, "args"), policy)


def args_problems(
    cls: type[Plugin],
    args: Mapping[str, Any],
    variables: Mapping[str, Any],
    loc: Loc,
    policy: RunPolicy | None = None,
) -> list[Problem]:
    """Problems of ``args`` against the plugin's ``Args``, after substituting ``variables``; then what a
    run would refuse in them (secrets outside secret fields, expressions that read files, hosts the
    network policy refuses).

    An argument whose value still holds a reference (env, secret, run, or an undefined variable) is not
    type-checked: its value is only known at run time.
    """
    from orchestrator.plugins.base import secret_fields

    if not args and _takes_no_args(cls):  # most steps of some plugins: nothing to resolve or check
        return []
    resolved = substitute_variables(dict(args), variables)
    capable = secret_fields(cls.Args)
    refused = [
        Problem(secret_refused_message(cls.name, key, capable), format_path((*loc, key)))
        for key, value in resolved.items()
        if key not in capable and has_reference(value, ("secrets",))
    ]
    try:
        cls.Args.model_validate(resolved)
    except ValidationError as exc:
        pending = {k for k, v in resolved.items() if has_reference(v, KINDS)}
        found = problems_from_validation_error(
            exc, prefix=loc, noun="argument", allowed=_allowed_args(cls.Args)
        )
        return refused + [p for p, full in found if not (len(full) > len(loc) and full[len(loc)] in pending)]
    return refused + field_problems(cls, resolved, loc, policy or RunPolicy())


#: plugin class -> whether its ``Args`` accepts no arguments at all
_NO_ARGS_OK: dict[type[Plugin], bool] = {}


def _takes_no_args(cls: type[Plugin]) -> bool:
    known = _NO_ARGS_OK.get(cls)
    if known is None:
        try:
            cls.Args.model_validate({})
        except ValidationError:
            known = False
        else:
            known = True
        _NO_ARGS_OK[cls] = known
    return known


def field_problems(cls: type[Plugin], args: Mapping[str, Any], loc: Loc, policy: RunPolicy) -> list[Problem]:
    """What a run would refuse in literal argument values, by the ``format`` their ``Args`` field declares:
    ``expression`` and Polars ``sql`` are checked by the SQL guard, ``url`` and ``dsn`` by the network
    policy. Values that still hold a reference are checked at run time."""
    problems = []
    for name, info in cls.Args.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        check = _FIELD_CHECKS.get(str(extra.get("format", "")))
        key = info.alias or name
        if check is None or key not in args:
            continue
        for where, text in _literal_texts(args[key], (*loc, key)):
            message = check(text, extra, policy)
            if message:
                problems.append(Problem(message, format_path(where)))
    return problems


def _literal_texts(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """The strings of a field's value without references: itself, or the values of a mapping or list."""
    if isinstance(value, str):
        if "${{" not in value:
            yield loc, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _literal_texts(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _literal_texts(item, (*loc, i))


def _network_problem(text: str, extra: Mapping[str, Any], policy: RunPolicy) -> str | None:
    return policy.network.literal_problem(text)


def _path_problem(text: str, extra: Mapping[str, Any], policy: RunPolicy) -> str | None:
    if ".." in PurePosixPath(text).parts:
        return f"path '{text}' contains '..', which leaves the data root; give a path inside the data root"
    if policy.data_root is None or not text.strip():
        return None
    # the rule of orchestrator.plugins.paths at run time, without naming the server's folders
    root = Path(policy.data_root).resolve()
    given = Path(text)
    resolved = (given if given.is_absolute() else root / given).resolve()
    if resolved.is_relative_to(root):
        return None
    if given.is_absolute():
        return f"absolute path '{text}' is outside the data root; give a path relative to the data root"
    return f"path '{text}' leads out of the data root through a symbolic link; give a path inside it"


def _dsn_problem(text: str, extra: Mapping[str, Any], policy: RunPolicy) -> str | None:
    scheme, _, rest = text.partition("://")
    if scheme.lower() == "sqlite" and rest.startswith("/"):
        return _path_problem(rest[1:].split("?", 1)[0], extra, policy)
    return _network_problem(text, extra, policy)


def _sql_problem(text: str, extra: Mapping[str, Any], policy: RunPolicy) -> str | None:
    from orchestrator.plugins.sqlguard import polars_sql_problem, sql_script_problem

    if extra.get("format") == "sql" and extra.get("dialect") != "polars":
        # SQL run by the destination database: only a script's statements are checked (its dialect is
        # the DSN's, known at run time, so the rules of every dialect apply here)
        return sql_script_problem(text) if extra.get("script") else None

    from orchestrator.sqlcheck import parse_problem

    functions = [str(f) for f in extra.get("functions", ())]
    expression = extra.get("format") == "expression"
    refused = polars_sql_problem(text, expression=expression, extra_functions=functions)
    if refused or not policy.parse_sql:
        return refused
    # what the guard lets through must also parse, as the step parses it at run time
    return parse_problem(text, expression=expression, functions=functions)


#: field ``format`` -> the check of one literal text of it
_FIELD_CHECKS: dict[str, Callable[[str, Mapping[str, Any], RunPolicy], str | None]] = {
    "url": _network_problem,
    "dsn": _dsn_problem,
    "path": _path_problem,
    "expression": _sql_problem,
    "sql": _sql_problem,
}


def _allowed_args(model: type[BaseModel]) -> Any:
    def allowed(loc: Loc) -> list[str] | None:
        return list(model.model_fields) if not loc else None

    return allowed
