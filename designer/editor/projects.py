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
from designer.runs.isolation import team_data_root
from designer.teams.secrets import sanitize_declaration, secret_import_report
from orchestrator import PipelineSpec, ProjectSpec, SecretSpec, SpecError, find_cycle


class ProjectError(ValueError):
    """A project change that cannot be made; the message is shown to the user."""


def needs_graph(project: Project) -> dict[str, list[str]]:
    """Pipeline name -> names it needs."""
    return {p.name: p.needs for p in project.pipelines.all()}


def add_need(project: Project, pipeline: Pipeline, needed: str, user: Any = None) -> None:
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
    pipeline_service.set_needs(pipeline, graph[pipeline.name], user, f"Runs after {needed}")


def remove_need(pipeline: Pipeline, needed: str, user: Any = None) -> None:
    """Drop the edge ``pipeline`` needs ``needed``."""
    remaining = [n for n in pipeline.needs if n != needed]
    pipeline_service.set_needs(pipeline, remaining, user, f"No longer needs {needed}")


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
    #: pipelines of the file identical to their latest version: no new version
    unchanged: list[str] = field(default_factory=list)
    #: the version each created or changed pipeline of the file got, in file order
    versions: list[PipelineVersion] = field(default_factory=list)


def _declaration(secret: SecretSpec) -> dict[str, Any]:
    """A secret declaration to keep: the provider and its arguments, never a literal value."""
    return sanitize_declaration(secret)


def secret_notes(project: Project, spec: ProjectSpec | None) -> list[str]:
    """What the importing user should know about the file's secrets (the team's store holds the values)."""
    if spec is None:
        return []
    return list(secret_import_report(spec, project.team))


def load_file(project: Project, text: str | bytes, filename: str) -> ProjectSpec:
    """The file, validated whole in the project's context: its references may use the team's variables and
    secrets, its ``needs`` the project's pipelines. SpecError lists every problem."""
    variables, secrets = reference_context(project)
    others = pipeline_service.other_pipelines(project)
    root = team_data_root(project.team)
    return load_project_yaml(text, variables, secrets, source=filename, pipelines=others, data_root=root)


@dataclass
class PipelineChange:
    """What importing a file does to one pipeline."""

    name: str
    kind: str  # added | changed | unchanged
    steps_added: list[str] = field(default_factory=list)
    steps_removed: list[str] = field(default_factory=list)
    steps_changed: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # type, needs, description
    #: its draft had unsaved changes, which the import replaces (Undo in the editor brings them back)
    unsaved: bool = False


@dataclass
class ImportPreview:
    """What an upload will add, change and remove, before anything is saved (the project is merged:
    variables, secret declarations and pipelines the file does not hold stay)."""

    spec: ProjectSpec
    pipelines: list[PipelineChange]
    variables_added: dict[str, Any] = field(default_factory=dict)
    variables_changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    variables_kept: list[str] = field(default_factory=list)
    secrets_added: list[str] = field(default_factory=list)
    secrets_changed: list[str] = field(default_factory=list)
    secrets_kept: list[str] = field(default_factory=list)
    concurrency: tuple[int, int] | None = None

    @property
    def changes_anything(self) -> bool:
        return bool(
            any(p.kind != "unchanged" for p in self.pipelines)
            or self.variables_added
            or self.variables_changed
            or self.secrets_added
            or self.secrets_changed
            or self.concurrency
        )


def _steps(spec: dict[str, Any]) -> dict[str, Any]:
    """``phase.step_id`` -> the step, for every step of a pipeline spec."""
    found = {}
    for phase, body in (spec.get("phases") or {}).items():
        for slot in ("pre", "steps", "merge", "post"):
            value = (body or {}).get(slot)
            for step in [value] if isinstance(value, dict) else value or []:
                found[f"{phase}.{step.get('id')}"] = step
    return found


def _normalised(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        return PipelineSpec.model_validate(copy.deepcopy(spec)).model_dump(mode="json")
    except ValidationError:
        return spec


def _pipeline_change(name: str, new: dict[str, Any], pipeline: Pipeline | None) -> PipelineChange:
    if pipeline is None:
        return PipelineChange(name, "added", steps_added=sorted(_steps(new)))
    old = _normalised(pipeline.spec)
    unsaved = pipeline.has_unsaved_changes()
    if old == new:
        latest = pipeline.latest_version()
        return PipelineChange(name, "changed" if latest is None else "unchanged", unsaved=unsaved)
    before, after = _steps(old), _steps(new)
    other = [
        f"{key} {old.get(key) or '—'} → {new.get(key) or '—'}"
        for key in ("type", "needs", "description")
        if (old.get(key) or None) != (new.get(key) or None)
    ]
    return PipelineChange(
        name,
        "changed",
        steps_added=sorted(set(after) - set(before)),
        steps_removed=sorted(set(before) - set(after)),
        steps_changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        other=other,
        unsaved=unsaved,
    )


def preview_import(project: Project, text: str | bytes, filename: str) -> ImportPreview:
    """What importing ``text`` would change (SpecError when the file is not valid); saves nothing."""
    spec = load_file(project, text, filename)
    existing = {p.name: p for p in project.pipelines.all()}
    preview = ImportPreview(
        spec=spec,
        pipelines=[
            _pipeline_change(name, p.model_dump(mode="json"), existing.get(name))
            for name, p in spec.pipelines.items()
        ],
    )
    old_variables = project.variables or {}
    for name, value in spec.variables.items():
        if name not in old_variables:
            preview.variables_added[name] = value
        elif old_variables[name] != value:
            preview.variables_changed[name] = (old_variables[name], value)
    preview.variables_kept = sorted(set(old_variables) - set(spec.variables))
    old_secrets = project.secrets or {}
    for name, secret in spec.secrets.items():
        if name not in old_secrets:
            preview.secrets_added.append(name)
        elif old_secrets[name] != _declaration(secret):
            preview.secrets_changed.append(name)
    preview.secrets_kept = sorted(set(old_secrets) - set(spec.secrets))
    if "concurrency" in spec.model_fields_set and spec.concurrency != project.concurrency:
        preview.concurrency = (project.concurrency, spec.concurrency)
    return preview


def import_project(
    project: Project, text: str | bytes, filename: str, user: Any = None, client: str = ""
) -> ImportResult:
    """Validate the whole file, then merge it into the project: its variables, secret declarations and
    concurrency (when the file sets it) over the project's, its pipelines created or updated (a version
    each that changed); all or nothing. Nothing the file does not hold is removed.

    Raises SpecError (every problem with line, column and key path) and then saves nothing.
    """
    spec = load_file(project, text, filename)
    result = ImportResult(spec=spec)
    with transaction.atomic():
        fields = ["variables", "secrets", "updated_at"]
        if "concurrency" in spec.model_fields_set:
            project.concurrency = spec.concurrency
            fields.append("concurrency")
        # the file's own definitions only (names it uses from the team stay the team's)
        project.variables = {**(project.variables or {}), **spec.variables}
        declared = {name: _declaration(s) for name, s in spec.secrets.items()}
        project.secrets = {**(project.secrets or {}), **declared}
        project.save(update_fields=fields)
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
        for name, pipeline_spec in spec.pipelines.items():
            pipeline = existing[name]
            label = f"Import {filename}"[:200]
            pipeline_service.store(
                pipeline, pipeline_spec.model_dump(mode="json"), user=user, client=client, label=label
            )
            if not pipeline.is_valid:  # the engine accepted the file, so this is a bug: save nothing
                raise SpecError([_problem(e, name) for e in pipeline.errors], source=filename)
            if not pipeline.has_unsaved_changes():
                result.unchanged.append(name)
                continue
            if name not in result.created:
                result.updated.append(name)
            result.versions.append(pipeline_service.save_version(pipeline, user, f"Imported from {filename}"))
    return result


def _problem(error: dict[str, Any], name: str) -> Any:
    from orchestrator import Problem

    return Problem(error["message"], f"pipelines.{name}.{error.get('path', '')}".rstrip("."))
