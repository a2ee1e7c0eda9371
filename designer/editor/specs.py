"""The engine's answers in the shapes the editor stores and shows: validation results as plain dicts,
YAML of pipelines (drafts too) and projects, project files loaded in their project's context.

The engine (``orchestrator``) is the single source of truth for what is valid and how YAML reads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
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
) -> Checked:
    """Validate one pipeline's spec dict with the engine, under the site's rules for runs.

    ``known_pipelines`` are the valid ``needs`` targets; ``variables`` and ``secrets`` (names) are what
    its references may use.
    """
    parsed, problems = pipeline_problems(
        name,
        spec,
        registry,
        context=Definitions(variables or {}, tuple(secrets or ())),
        pipelines=known_pipelines,
        policy=isolation.run_policy(),
    )
    normalised = parsed.model_dump(mode="json") if parsed is not None else spec
    return Checked(spec=normalised, errors=[problem_dict(p) for p in problems])


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
    return dump_pipeline(project, name)


def dump_project_yaml(project: ProjectSpec) -> str:
    """The project file as the engine writes it."""
    return dump_project(project)


def load_project_yaml(
    text: str | bytes, variables: dict[str, Any], secrets: Iterable[str], source: str = "<yaml>"
) -> ProjectSpec:
    """Parse and fully validate a project file whose references may also use the project's (team's)
    ``variables`` and ``secrets``; the spec holds only the file's own. SpecError lists every problem."""
    return load_project(
        text,
        source=source,
        registry=registry,
        policy=isolation.run_policy(),
        context=Definitions(variables, tuple(secrets)),
    )
