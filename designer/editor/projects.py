"""Project-level logic: the ``needs`` graph, export to YAML and import from YAML."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.text import slugify
from pydantic import ValidationError

from designer.editor import pipelines as pipeline_service
from designer.editor.definitions import export_definitions, reference_context
from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.editor.specs import dump_project_yaml, load_project_yaml
from designer.teams.secrets import sanitize_declaration, secret_import_report
from orchestrator import PipelineSpec, ProjectSpec, SecretSpec, SpecError, find_cycle


class ProjectError(ValueError):
    """A project change that cannot be made; the message is shown to the user."""


def needs_graph(project: Project) -> dict[str, list[str]]:
    """Pipeline name -> names it needs."""
    return {p.name: p.needs for p in project.pipelines.all()}


def add_need(project: Project, pipeline: Pipeline, needed: str) -> None:
    """Make ``pipeline`` run after ``needed``; a cycle is refused with the cycle named."""
    graph = needs_graph(project)
    if needed not in graph:
        raise ProjectError(f"there is no pipeline named '{needed}' in this project")
    if needed == pipeline.name:
        raise ProjectError(f"pipeline '{pipeline.name}' cannot need itself")
    if needed in graph[pipeline.name]:
        return
    graph[pipeline.name] = [*graph[pipeline.name], needed]
    cycle = find_cycle(graph)
    if cycle:
        raise ProjectError(
            f"'{pipeline.name}' cannot need '{needed}': that makes a cycle {' -> '.join(cycle)}"
        )
    pipeline_service.edit(pipeline, lambda spec: spec.__setitem__("needs", graph[pipeline.name]))


def remove_need(pipeline: Pipeline, needed: str) -> None:
    """Drop the edge ``pipeline`` needs ``needed``."""
    remaining = [n for n in pipeline.needs if n != needed]
    pipeline_service.edit(pipeline, lambda spec: spec.__setitem__("needs", remaining))


def _exportable_spec(pipeline: Pipeline) -> PipelineSpec | None:
    """The current spec when valid, else the newest version's (a draft is never exported half-done)."""
    candidates = [pipeline.spec] if pipeline.is_valid else []
    latest = pipeline.latest_version()
    if latest is not None:
        candidates.append(latest.spec)
    for spec in candidates:
        try:
            return PipelineSpec.model_validate(copy.deepcopy(spec))
        except ValidationError:
            continue
    return None


def project_spec(project: Project) -> ProjectSpec:
    """The project as the engine's spec: its variables, concurrency and every exportable pipeline."""
    specs = {}
    for pipeline in project.pipelines.all().order_by("name"):
        spec = _exportable_spec(pipeline)
        if spec is not None:
            specs[pipeline.name] = spec
    for spec in specs.values():
        spec.needs = [n for n in spec.needs if n in specs]
    if not specs:
        raise ProjectError("this project has no valid pipeline to export yet")
    variables, secrets = export_definitions(project, [s.model_dump(mode="json") for s in specs.values()])
    return ProjectSpec(variables=variables, secrets=secrets, concurrency=project.concurrency, pipelines=specs)


def export_project(project: Project) -> str:
    """The project file (YAML), byte-for-byte stable for the same content."""
    return dump_project_yaml(project_spec(project))


@dataclass
class ImportResult:
    spec: ProjectSpec
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: the version each pipeline of the file got, in file order
    versions: list[PipelineVersion] = field(default_factory=list)


def _declaration(secret: SecretSpec) -> dict[str, Any]:
    """A secret declaration to keep: the provider and its arguments, never a literal value."""
    return sanitize_declaration(secret)


def secret_notes(project: Project, result: ImportResult | None) -> list[str]:
    """What the importing user should know about the file's secrets (the team's store holds the values)."""
    if result is None:
        return []
    return list(secret_import_report(result.spec, project.team))


def import_project(project: Project, text: str | bytes, filename: str, user: Any = None) -> ImportResult:
    """Validate the whole file, then create or update its pipelines (a version each); all or nothing.

    Raises SpecError (every problem with line, column and key path) and then saves nothing.
    """
    variables, secrets = reference_context(project)
    spec = load_project_yaml(text, variables, secrets, source=filename)
    result = ImportResult(spec=spec)
    with transaction.atomic():
        project.concurrency = spec.concurrency
        # the file's own definitions only (names it uses from the team stay the team's)
        project.variables = dict(spec.variables)
        project.secrets = {name: _declaration(s) for name, s in spec.secrets.items()}
        project.save(update_fields=["concurrency", "variables", "secrets", "updated_at"])
        existing = {p.name: p for p in project.pipelines.all()}
        for name in spec.pipelines:
            if name not in existing:
                existing[name] = Pipeline.objects.create(
                    project=project,
                    name=name,
                    slug=slugify(name.replace("_", "-")) or "pipeline",
                    type=spec.pipelines[name].type.value,
                    created_by=user if user is not None and user.is_authenticated else None,
                )
                result.created.append(name)
            else:
                result.updated.append(name)
        for name, pipeline_spec in spec.pipelines.items():
            pipeline = existing[name]
            pipeline_service.store(pipeline, pipeline_spec.model_dump(mode="json"))
            if not pipeline.is_valid:  # the engine accepted the file, so this is a bug: save nothing
                raise SpecError([_problem(e, name) for e in pipeline.errors], source=filename)
            result.versions.append(pipeline_service.save_version(pipeline, user, f"Imported from {filename}"))
    return result


def _problem(error: dict[str, Any], name: str) -> Any:
    from orchestrator import Problem

    return Problem(error["message"], f"pipelines.{name}.{error.get('path', '')}".rstrip("."))
