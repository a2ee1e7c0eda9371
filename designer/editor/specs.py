"""The engine's answers in the shapes the editor stores and shows: validation results as plain dicts,
YAML of pipelines (drafts too) and projects, project files loaded in their project's context.

The engine (``orchestrator``) is the single source of truth for what is valid and how YAML reads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from designer.runs import isolation
from orchestrator import (
    Definitions,
    PipelineSpec,
    Problem,
    ProjectSpec,
    SecretSpec,
    dump_pipeline,
    dump_project,
    load_project,
    pipeline_problems,
    registry,
)


@dataclass
class Checked:
    """The outcome of validating a pipeline: the normalised spec when valid, else the problems."""

    spec: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


def problem_dict(problem: Problem) -> dict[str, Any]:
    """A Problem as a JSON-able dict (what ``Pipeline.errors`` stores)."""
    return {"message": problem.message, "path": problem.path, "line": problem.line, "column": problem.column}


def validate_pipeline(
    name: str,
    spec: dict[str, Any],
    known_pipelines: set[str] | None = None,
    variables: dict[str, Any] | None = None,
    secrets: Iterable[str] | None = None,
    *,
    data_root: Path | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> Checked:
    """Validate one pipeline's spec dict with the engine, under the site's rules for runs.

    ``known_pipelines`` are the valid ``needs`` targets; ``variables`` and ``secrets`` (names) are what
    its references may use; ``data_root``: the team's folder its paths must stay in; ``columns``: the
    output columns of the steps whose schema is known (``{step id: [column, ...]}``), so that the columns
    its SQL names are checked too (none known yet: not checked).
    """
    parsed, problems = pipeline_problems(
        name,
        spec,
        registry,
        context=Definitions(variables or {}, tuple(secrets or ())),
        pipelines=known_pipelines,
        policy=isolation.run_policy(data_root),
        columns=columns,
    )
    normalised = parsed.model_dump(mode="json") if parsed is not None else spec
    return Checked(spec=normalised, errors=[problem_dict(p) for p in problems])


def pipeline_spec(spec: dict[str, Any]) -> PipelineSpec:
    """The pydantic spec of a stored (valid) pipeline dict."""
    return PipelineSpec.model_validate(copy.deepcopy(spec))


#: a step's keys whose default values a dump leaves out (as the engine's own dumps do)
_STEP_DEFAULTS = {"timeout": None, "retries": 0, "retry_backoff": 1.0}


def _compact(value: Any) -> Any:
    """A draft without its empty and default values, so that it reads (and diffs) like a valid dump."""
    if isinstance(value, dict):
        return {
            k: _compact(v)
            for k, v in value.items()
            if v not in (None, [], {}) and not (k in _STEP_DEFAULTS and v == _STEP_DEFAULTS[k])
        }
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as the engine's dumps are (a diff then shows only what changed)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def draft_yaml(name: str, spec: dict[str, Any], concurrency: int = 2) -> str:
    """A plain YAML dump of a draft that does not validate (for the YAML tab and diffs)."""
    data = {"concurrency": concurrency, "pipelines": {name: _compact(spec)}}
    body = yaml.dump(data, Dumper=_IndentedDumper, sort_keys=False, allow_unicode=True, width=1 << 30)
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
        return draft_yaml(name, spec, concurrency)
    project = ProjectSpec.model_construct(
        variables=dict(variables or {}),
        secrets={k: SecretSpec.model_validate(v) for k, v in (secrets or {}).items()},
        concurrency=concurrency,
        pipelines={name: parsed},
        plugins=None,
    )
    # with its needs: the file loads back into its project (the YAML tab, an upload), where they exist
    return dump_pipeline(project, name, keep_needs=True)


def dump_project_yaml(project: ProjectSpec) -> str:
    """The project file as the engine writes it."""
    return dump_project(project)


def load_project_yaml(
    text: str | bytes,
    variables: dict[str, Any],
    secrets: Iterable[str],
    source: str = "<yaml>",
    pipelines: Mapping[str, Sequence[str]] | None = None,
    data_root: Path | None = None,
) -> ProjectSpec:
    """Parse and fully validate a project file whose references may also use the project's (team's)
    ``variables`` and ``secrets``, and whose ``needs`` may name the project's other ``pipelines`` (name ->
    its needs); the spec holds only the file's own. SpecError lists every problem."""
    return load_project(
        text,
        source=source,
        registry=registry,
        policy=isolation.run_policy(data_root),
        context=Definitions(variables, tuple(secrets), dict(pipelines or {})),
    )
