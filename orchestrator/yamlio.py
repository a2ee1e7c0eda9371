"""YAML <-> ProjectSpec in the pipeline-flow format: safe YAML 1.2 loading with located errors, stable dumps.

A file holds ``variables:`` / ``secrets:`` documents first, then one project document. References
(``${{ variables.X }}``...) stay as text in the spec: they are resolved at run time
(``orchestrator.resolve``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode

from orchestrator.errors import Loc, Problem, SpecError, format_path, problems_from_validation_error
from orchestrator.phases import PHASE_ORDER, PHASE_SLOTS
from orchestrator.policy import RunPolicy
from orchestrator.resolve import Reference, iter_references
from orchestrator.spec import (
    OTHER_PIPELINES,
    Definitions,
    PipelineSpec,
    ProjectSpec,
    SecretSpec,
    StepSpec,
    check_needs,
)
from orchestrator.validate import plugin_problems, reference_problems
from orchestrator.yamlsafe import (
    MAX_ALIAS_EXPANSION,
    MAX_ALIASES,
    MAX_DEPTH,
    TAG,
    CoreLoader,
    NodeTree,
    Refused,
    check_graph,
    compose,
    parse_scalar,
    position,
    problem_at,
)

if TYPE_CHECKING:
    from orchestrator.plugins.registry import PluginRegistry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_ALIASES",
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "CoreLoader",
    "Definitions",
    "dump_pipeline",
    "dump_project",
    "load_project",
    "needs_quotes",
    "parse_scalar",
]

DEFAULT_MAX_BYTES = 1_048_576
_DEFINITIONS = ("variables", "secrets")


def load_project(
    text: str | bytes,
    *,
    source: str = "<string>",
    max_bytes: int = DEFAULT_MAX_BYTES,
    registry: PluginRegistry | None = None,
    policy: RunPolicy | None = None,
    context: Definitions | None = None,
) -> ProjectSpec:
    """Parse a project file into a ProjectSpec; raises SpecError listing every problem with its location.

    ``policy``: what the site's runs may use (default: the CLI's, which allows everything).
    ``context``: definitions the file may use besides its own; the spec holds only the file's own.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        message = f"the file is too large: {size:,} bytes, the limit is {max_bytes:,} bytes"
        raise SpecError([Problem(message)], source)
    nodes = compose(text, source)
    tree = NodeTree(CoreLoader(""))
    # Without an anchor (&name) there is no alias: nothing expands, and building the tree checks the
    # depth itself. The graph check costs as much as building, so it runs only when it can find something.
    anchored = ("&" in text) if isinstance(text, str) else (b"&" in text)
    documents = []
    for node in nodes:
        try:
            if anchored:
                check_graph(node)
            documents.append((node, tree.build(node)))
        except Refused as exc:
            raise SpecError([problem_at(str(exc), exc.node)], source) from None
    data = _assemble(documents, tree)
    problems = list(tree.problems)
    spec = None
    context = context or Definitions()
    if data is not None:
        problems += reference_problems(
            {k: v for k, v in data.items() if k != "plugins"},
            {**context.variables, **data["variables"]},
            {*context.secrets, *data["secrets"]},
            policy.env_allowed if policy else None,
        )
        try:
            spec = ProjectSpec.model_validate(data, context={OTHER_PIPELINES: context.pipelines})
        except ValidationError as exc:
            problems += _spec_problems(exc, data, tree, context.pipelines)
    if spec is not None and registry is not None and not problems:
        known = {**context.variables, **spec.variables}
        problems += plugin_problems(spec.model_copy(update={"variables": known}), registry, policy)
    if problems or spec is None:
        raise SpecError(_locate(problems, tree), source)
    return spec


def _assemble(documents: list[tuple[Node, Any]], tree: NodeTree) -> dict[str, Any] | None:
    """Merge the variables / secrets documents and the project document into one mapping."""
    definitions: dict[str, dict[str, Any]] = {"variables": {}, "secrets": {}}
    project: tuple[Node, dict[str, Any]] | None = None
    for node, data in documents:
        if data is None:
            continue
        if not isinstance(data, dict):
            tree.problems.append(
                problem_at(f"a document must be a mapping of keys (like 'pipelines:'), not {_a(data)}", node)
            )
            continue
        held = [k for k in _DEFINITIONS if k in data]
        if not held:
            if project is not None:
                first = project[0].start_mark.line + 1
                message = "a file holds one project document, but another one starts here "
                message += f"(the first is on line {first})"
                tree.problems.append(problem_at(message, node))
            else:
                project = node, data
            continue
        _add_definitions(node, data, held, project is not None, definitions, tree)
    if project is not None:
        tree.marks[""] = project[0]  # problems about the project as a whole point at its document
    if project is None:
        if not tree.problems:
            tree.problems.append(Problem("the file holds no project document (a document with 'pipelines:')"))
        return None
    return {**definitions, **project[1]}


def _add_definitions(
    node: Node,
    data: dict[str, Any],
    held: list[str],
    late: bool,
    into: dict[str, dict[str, Any]],
    tree: NodeTree,
) -> None:
    others = [k for k in data if k not in _DEFINITIONS]
    names = " and ".join(f"'{k}'" for k in held)
    if others:
        own = "their own" if len(held) > 1 else "its own"
        message = (
            f"{names} must be in a document of {own}, before the project: separate them with a line '---'"
        )
        tree.problems.append(problem_at(message, node))
    if late:
        tree.problems.append(problem_at(f"{names} must come before the project document", node))
    for kind in held:
        value = data[kind] if data[kind] is not None else {}
        if not isinstance(value, dict):
            tree.problems.append(
                problem_at(f"expected a mapping of names and values, got {_a(value)}", None, kind)
            )
            continue
        for name, item in value.items():
            if name in into[kind]:
                what = "variable" if kind == "variables" else "secret"
                key = _key_node(node, kind, name)
                tree.problems.append(
                    problem_at(f"{what} '{name}' is defined twice", key, format_path((kind, name)))
                )
            into[kind][name] = item


def _key_node(node: Node, *path: str) -> Node | None:
    """The key node at ``path`` (e.g. the 'A' in ``variables: {A: 1}``), found in one document's nodes."""
    key_node = None
    for part in path:
        if not isinstance(node, MappingNode):
            return None
        found = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part]
        if not found:
            return None
        key_node, node = found[0]
    return key_node


def _a(value: Any) -> str:
    return (
        "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "a plain value"
    )


def _spec_problems(
    exc: ValidationError,
    data: dict[str, Any],
    tree: NodeTree,
    others: Mapping[str, Collection[str]] | None = None,
) -> list[Problem]:
    found = problems_from_validation_error(exc, allowed=_allowed_keys)
    # "unknown key 'stpes'; did you mean 'steps'?" says it all: drop the "missing required key 'steps'"
    misspelt = {(p.path, m[1]) for p, _ in found if (m := re.search(r"did you mean '([^']*)'\?$", p.message))}
    problems = []
    for problem, loc in found:
        if problem.message.startswith("missing required key") and (problem.path, str(loc[-1])) in misspelt:
            continue
        if not loc:  # the project-level rule: needs and cycles; point at the pipeline's needs
            needs = _raw_needs(data.get("pipelines"))
            culprit = check_needs(needs, others) if needs is not None else None
            if culprit:
                problem = Problem(problem.message, format_path(("pipelines", culprit[0], "needs")))
        elif problem.path != format_path(loc) and format_path(loc) in tree.key_marks:  # an unknown key
            key = tree.key_marks[format_path(loc)]
            line, column = position(key.start_mark)
            problem = Problem(problem.message, problem.path, line, column)
        problems.append(problem)
    return problems


def _raw_needs(pipelines: Any) -> dict[str, list[str]] | None:
    if not isinstance(pipelines, dict):
        return None
    needs = {}
    for name, pipeline in pipelines.items():
        value = pipeline.get("needs") if isinstance(pipeline, dict) else None
        needs[name] = (
            [value]
            if isinstance(value, str)
            else [str(v) for v in value or []]
            if isinstance(value, list)
            else []
        )
    return needs


def _allowed_keys(loc: Loc) -> list[str] | None:
    """The keys the spec model at ``loc`` accepts (for "did you mean" hints)."""
    annotation: Any = ProjectSpec
    for part in loc:
        annotation = _inner(annotation, part)
        if annotation is None:
            return None
    model = _model_of(annotation)
    if model is None:
        return None
    return [k for k in model.model_fields if loc or k not in _DEFINITIONS]  # those have their own document


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) not in (list, dict) else ():
        if (model := _model_of(arg)) is not None:
            return model
    return None


def _inner(annotation: Any, part: str | int) -> Any:
    model = _model_of(annotation)
    if model is not None and isinstance(part, str) and part in model.model_fields:
        return model.model_fields[part].annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(part, int):
        return args[0]
    if origin is dict and isinstance(part, str):
        return args[1]
    return None


def _locate(problems: list[Problem], tree: NodeTree) -> list[Problem]:
    """Give each problem the line and column of the closest node on its path; sort them in file order."""
    located = []
    for problem in problems:
        if problem.line is None and tree.marks:
            node = _closest(problem.path, tree.marks)
            if node is not None:
                line, column = position(node.start_mark)
                problem = Problem(problem.message, problem.path, line, column)
        located.append(problem)
    return sorted(located, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


_LAST_PART = re.compile(r"(?:\.[\w-]+|\[[^\]]*\])$")


def _closest(path: str, marks: dict[str, Node]) -> Node | None:
    while path:
        if path in marks:
            return marks[path]
        shorter = _LAST_PART.sub("", path)
        path = "" if shorter == path else shorter
    return marks.get("")


# --- writing -------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Pure-Python dumper (same bytes everywhere), block style, indented lists, quoting ambiguous text."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_YAML11 = yaml.resolver.Resolver()
_CORE = CoreLoader("")
_ONE_LETTER_BOOLS = {"y", "Y", "n", "N"}


def needs_quotes(text: str) -> bool:
    """True when a YAML 1.1 or 1.2 reader would read ``text`` as something else than this text."""
    plain = (True, False)
    return (
        text in _ONE_LETTER_BOOLS
        or _YAML11.resolve(ScalarNode, text, plain) != TAG + "str"  # type: ignore[no-untyped-call]  # types-PyYAML
        or _CORE.resolve(ScalarNode, text, plain) != TAG + "str"
    )


_ESCAPE_ONLY = re.compile("[\r\x85\u2028\u2029\ufeff]")  # read back differently unless escaped


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if _ESCAPE_ONLY.search(text):
        style: str | None = '"'
    elif "\n" in text.rstrip("\n"):
        style = "|"
    else:
        style = "'" if needs_quotes(text) else None
    return dumper.represent_scalar(TAG + "str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _step(step: StepSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"id": step.id, "plugin": step.plugin}
    if step.args:
        out["args"] = step.args
    for name in ("timeout", "retries", "retry_backoff"):
        value = getattr(step, name)
        if value != StepSpec.model_fields[name].default:
            out[name] = value
    return out


def _pipeline(pipeline: PipelineSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": pipeline.type.value}
    if pipeline.description is not None:
        out["description"] = pipeline.description
    if pipeline.needs:
        out["needs"] = list(pipeline.needs)
    phases: dict[str, Any] = {}
    for name in PHASE_ORDER:
        phase = pipeline.phase(name)
        if phase is None:
            continue
        body: dict[str, Any] = {}
        for slot in PHASE_SLOTS[name]:
            value = getattr(phase, slot)
            if isinstance(value, StepSpec):
                body[slot] = _step(value)
            elif value or (slot == "steps" and value is not None):
                body[slot] = [_step(s) for s in value]
        phases[name.value] = body
    out["phases"] = phases
    return out


def _secret(secret: SecretSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"plugin": secret.plugin}
    if secret.id is not None:
        out["id"] = secret.id
    if secret.args:
        out["args"] = secret.args
    return out


def dump_project(spec: ProjectSpec) -> str:
    """The project as YAML: a variables document, a secrets document (when any), then the project."""
    documents: list[dict[str, Any]] = []
    if spec.variables:
        documents.append({"variables": spec.variables})
    if spec.secrets:
        documents.append({"secrets": {name: _secret(s) for name, s in spec.secrets.items()}})
    project: dict[str, Any] = {
        "concurrency": spec.concurrency,
        "pipelines": {name: _pipeline(p) for name, p in spec.pipelines.items()},
    }
    if spec.plugins is not None:
        project["plugins"] = spec.plugins
    documents.append(project)
    return str(
        yaml.dump_all(
            documents,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=1 << 30,
        )
    )


def dump_pipeline(spec: ProjectSpec, name: str, *, keep_needs: bool = False) -> str:
    """A project file holding only pipeline ``name``, with just the variables and secrets it references.

    ``keep_needs``: keep its ``needs`` (for loading back into its project, where they exist; the file then
    validates there, not alone)."""
    if name not in spec.pipelines:
        raise KeyError(f"no pipeline named '{name}' in this project")
    pipeline = spec.pipelines[name]
    if not keep_needs:
        pipeline = pipeline.model_copy(update={"needs": []})
    variables, secrets = _referenced(pipeline.model_dump(), spec)
    alone = ProjectSpec.model_construct(
        variables={k: v for k, v in spec.variables.items() if k in variables},
        secrets={k: v for k, v in spec.secrets.items() if k in secrets},
        concurrency=spec.concurrency,
        pipelines={name: pipeline},
        plugins=spec.plugins,
    )
    return dump_project(alone)


def _referenced(data: Any, spec: ProjectSpec) -> tuple[set[str], set[str]]:
    """Names of the variables and secrets ``data`` references, following references inside variables."""
    variables: set[str] = set()
    secrets: set[str] = set()
    pending = [data]
    while pending:
        for text in _texts(pending.pop()):
            for ref in iter_references(text):
                if not isinstance(ref, Reference):
                    continue
                if ref.kind == "secrets":
                    secrets.add(ref.name)
                elif ref.kind == "variables" and ref.name not in variables and ref.name in spec.variables:
                    variables.add(ref.name)
                    pending.append(spec.variables[ref.name])
    return variables, secrets


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
