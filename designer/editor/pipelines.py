"""Create, edit, version, diff and restore pipelines; every change is validated by the engine."""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from designer.editor import edits
from designer.editor.definitions import export_definitions, reference_context
from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.editor.specs import Checked, dump_pipeline_yaml, load_project_yaml, validate_pipeline
from orchestrator import Problem, SpecError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PipelineError(ValueError):
    """A request about a pipeline that cannot be honoured; the message is shown to the user."""


def check(pipeline: Pipeline, spec: dict[str, Any] | None = None) -> Checked:
    """Validate ``spec`` (default: the pipeline's current spec) as this pipeline of its project."""
    spec = spec if spec is not None else pipeline.spec
    known: set[str] | None = None
    if spec.get("needs"):
        known = set(Pipeline.objects.filter(project_id=pipeline.project_id).values_list("name", flat=True))
        known.add(pipeline.name)
    variables: dict[str, Any] = {}
    secrets: set[str] = set()
    if "${{" in json.dumps(spec):  # only a spec with references needs the project's variables and secrets
        variables, secrets = reference_context(pipeline.project)
    return validate_pipeline(pipeline.name, spec, known, variables, secrets)


def store(pipeline: Pipeline, spec: dict[str, Any]) -> Checked:
    """Validate and save ``spec`` as the pipeline's current (draft when invalid) definition."""
    checked = check(pipeline, edits.tidy(spec))
    pipeline.spec = checked.spec
    pipeline.type = str(checked.spec.get("type") or pipeline.type)
    pipeline.description = str(checked.spec.get("description") or "")
    pipeline.is_valid = checked.is_valid
    pipeline.errors = checked.errors
    if pipeline.pk is None:
        pipeline.save()
    else:
        pipeline.save(update_fields=["spec", "type", "description", "is_valid", "errors", "updated_at"])
    return checked


def edit(pipeline: Pipeline, change: Callable[[dict[str, Any]], Any]) -> Any:
    """Apply ``change`` to a copy of the spec, then validate and save it; returns what ``change`` returned."""
    spec = copy.deepcopy(pipeline.spec)
    result = change(spec)
    store(pipeline, spec)
    return result


def validate_name(project: Project, name: str, exclude: Pipeline | None = None) -> str:
    """A usable new pipeline name (the YAML key), or PipelineError saying why not."""
    name = name.strip()
    if not IDENTIFIER.match(name):
        raise PipelineError(
            f"'{name}' is not a valid pipeline name: use letters, digits and '_', not starting with a digit"
        )
    taken = Pipeline.objects.filter(project=project, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise PipelineError(f"this project already has a pipeline named '{name}'")
    return name


def create_pipeline(
    project: Project, name: str, pipeline_type: str = "ETL", user: Any = None, description: str = ""
) -> Pipeline:
    """A new, empty pipeline (a draft until it has steps)."""
    name = validate_name(project, name)
    if pipeline_type not in {"ETL", "ELT", "ETLT"}:
        raise PipelineError(f"unknown pipeline type '{pipeline_type}'; expected ETL, ELT or ETLT")
    pipeline = Pipeline(
        project=project,
        name=name,
        slug=slugify(name.replace("_", "-")) or "pipeline",
        type=pipeline_type,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    store(pipeline, edits.new_spec(pipeline_type, description))
    return pipeline


def next_number(pipeline: Pipeline) -> int:
    """The number the next version gets."""
    return (pipeline.versions.aggregate(n=Max("number"))["n"] or 0) + 1


def save_version(pipeline: Pipeline, user: Any = None, message: str = "") -> PipelineVersion:
    """Record the current spec as a new immutable version (only a valid pipeline can be saved)."""
    if not pipeline.is_valid:
        raise PipelineError(
            "this pipeline has errors: fix them before saving a version (your changes are kept as a draft)"
        )
    with transaction.atomic():
        return PipelineVersion.objects.create(
            pipeline=pipeline,
            number=next_number(pipeline),
            spec=copy.deepcopy(pipeline.spec),
            author=user if user is not None and user.is_authenticated else None,
            message=message.strip()[:500],
        )


def restore(pipeline: Pipeline, number: int, user: Any = None) -> PipelineVersion:
    """Make version ``number`` current again, as a new version."""
    old = pipeline.versions.filter(number=number).first()
    if old is None:
        raise PipelineError(f"there is no version {number}")
    store(pipeline, copy.deepcopy(old.spec))
    if not pipeline.is_valid:
        raise PipelineError(f"version {number} no longer validates: {pipeline.errors[0]['message']}")
    return save_version(pipeline, user, f"Restored version {number}")


def pipeline_yaml(pipeline: Pipeline, spec: dict[str, Any] | None = None) -> str:
    """One pipeline's YAML (default: its current spec), standing alone: its variables and secrets declared."""
    project = pipeline.project
    spec = pipeline.spec if spec is None else spec
    variables, secrets = export_definitions(project, [spec])
    declared = {k: v.model_dump(mode="json") for k, v in secrets.items()}
    return dump_pipeline_yaml(pipeline.name, spec, variables, declared, project.concurrency)


def version_yaml(pipeline: Pipeline, number: int | None) -> str:
    """YAML of version ``number`` (None: the current draft)."""
    if number is None:
        return pipeline_yaml(pipeline)
    version = pipeline.versions.filter(number=number).first()
    if version is None:
        raise PipelineError(f"there is no version {number}")
    return pipeline_yaml(pipeline, version.spec)


def diff_versions(pipeline: Pipeline, a: int | None, b: int | None) -> str:
    """Unified diff between the YAML of two versions (None: the current draft)."""
    left, right = version_yaml(pipeline, a), version_yaml(pipeline, b)
    name_a = f"v{a}" if a is not None else "draft"
    name_b = f"v{b}" if b is not None else "draft"
    lines = difflib.unified_diff(
        left.splitlines(keepends=True), right.splitlines(keepends=True), fromfile=name_a, tofile=name_b
    )
    return "".join(lines)


def apply_yaml(pipeline: Pipeline, text: str) -> Checked:
    """Replace the pipeline with the one in ``text`` (the YAML tab); SpecError, changing nothing, if bad."""
    variables, secrets = reference_context(pipeline.project)
    spec = load_project_yaml(text, variables, secrets, source="YAML")
    if pipeline.name not in spec.pipelines or len(spec.pipelines) != 1:
        names = ", ".join(repr(n) for n in spec.pipelines)
        raise SpecError(
            [
                Problem(
                    f"the YAML must hold exactly one pipeline named '{pipeline.name}', found {names}",
                    "pipelines",
                )
            ],
            "YAML",
        )
    new = spec.pipelines[pipeline.name].model_dump(mode="json")
    with transaction.atomic():
        project = pipeline.project
        # Keep only what the text adds: what the tab showed from the team (same value) stays the team's.
        file_variables = project.variables or {}
        own_variables = {
            k: v for k, v in spec.variables.items() if k in file_variables or variables.get(k, _UNSET) != v
        }
        own_secrets = {
            k: v
            for k, v in spec.secrets.items()
            if k in (project.secrets or {}) or not _is_default_declaration(k, v)
        }
        if own_variables or own_secrets:
            project.variables = {**(project.variables or {}), **own_variables}
            declared = {k: v.model_dump(mode="json") for k, v in own_secrets.items()}
            project.secrets = {**(project.secrets or {}), **declared}
            project.save(update_fields=["variables", "secrets", "updated_at"])
        return store(pipeline, new)


_UNSET = object()


def _is_default_declaration(name: str, declaration: Any) -> bool:
    """The declaration an export writes for a team secret (``env_secret`` named after it)."""
    return (
        declaration.plugin == "env_secret" and declaration.args == {"name": name} and declaration.id is None
    )


def delete_pipeline(pipeline: Pipeline) -> None:
    """Delete a pipeline; the pipelines that needed it stop needing it."""
    with transaction.atomic():
        for other in Pipeline.objects.filter(project_id=pipeline.project_id).exclude(pk=pipeline.pk):
            if pipeline.name in other.needs:

                def drop_need(spec: dict[str, Any], o: Pipeline = other) -> None:
                    spec["needs"] = [n for n in o.needs if n != pipeline.name]

                edit(other, drop_need)
        pipeline.delete()
