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

from designer.editor import drafts, edits
from designer.editor.definitions import export_definitions, reference_context
from designer.editor.models import DraftEdit, Pipeline, PipelineVersion, Project
from designer.editor.specs import Checked, dump_pipeline_yaml, load_project_yaml, validate_pipeline
from designer.runs.isolation import team_data_root
from designer.runs.outputs import known_columns
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
    data_root = team_data_root(pipeline.project.team)
    # the columns each step's output had in the newest run or preview since it last changed
    columns = known_columns(pipeline.project_id, pipeline.name, spec) if pipeline.pk is not None else None
    return validate_pipeline(
        pipeline.name, spec, known, variables, secrets, data_root=data_root, columns=columns
    )


def store(
    pipeline: Pipeline,
    spec: dict[str, Any],
    *,
    user: Any = None,
    client: str = "",
    label: str = "",
    kind: str = DraftEdit.Kind.EDIT,
    of: DraftEdit | None = None,
) -> Checked:
    """Validate and save ``spec`` as the pipeline's draft (invalid drafts are kept too); a change bumps its
    revision and is logged for undo and the other editors (``drafts.record``)."""
    checked = check(pipeline, edits.tidy(spec))
    with transaction.atomic():
        if pipeline.pk is not None:
            before, revision = (
                Pipeline.objects.select_for_update().values_list("spec", "revision").get(pk=pipeline.pk)
            )
        pipeline.spec = checked.spec
        pipeline.type = str(checked.spec.get("type") or pipeline.type)
        pipeline.description = str(checked.spec.get("description") or "")
        pipeline.is_valid = checked.is_valid
        pipeline.errors = checked.errors
        if pipeline.pk is None:
            pipeline.save()
            return checked
        changed = before != checked.spec
        pipeline.revision = revision + 1 if changed else revision
        fields = ["spec", "type", "description", "is_valid", "errors", "revision", "updated_at"]
        pipeline.save(update_fields=fields)
        if changed:
            drafts.record(
                pipeline, before, checked.spec, user=user, client=client, label=label, kind=kind, of=of
            )
    return checked


def edit(
    pipeline: Pipeline,
    change: Callable[[dict[str, Any]], Any],
    *,
    revision: int | None = None,
    user: Any = None,
    client: str = "",
    label: str = "",
) -> Any:
    """Apply ``change`` to a copy of the draft, then validate and save it; returns what ``change`` returned.

    ``revision``: the draft's revision the change was made on: drafts.StaleEdit (nothing changed) when
    someone else changed the draft since."""
    with transaction.atomic():
        _reload(pipeline)
        drafts.check_revision(pipeline, revision, client)
        spec = copy.deepcopy(pipeline.spec)
        result = change(spec)
        store(pipeline, spec, user=user, client=client, label=label)
    return result


def _reload(pipeline: Pipeline) -> None:
    """The draft as it is now, its row locked until the transaction ends (PostgreSQL; SQLite's IMMEDIATE
    transactions already run one at a time)."""
    fresh = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    for name in ("spec", "revision", "is_valid", "errors", "type", "description", "tags", "is_template"):
        setattr(pipeline, name, getattr(fresh, name))


def undo(pipeline: Pipeline, user: Any, *, revision: int | None = None, client: str = "") -> DraftEdit:
    """Undo ``user``'s latest edit of the draft (drafts.NothingToDo, drafts.StaleEdit); returns it."""
    with transaction.atomic():
        _reload(pipeline)
        drafts.check_revision(pipeline, revision, client)
        entry, spec = drafts.take_undo(pipeline, user)
        store(pipeline, spec, user=user, client=client, label=f"Undo: {entry.label}", kind="undo", of=entry)
        drafts.mark(entry, DraftEdit.State.UNDONE, pipeline.revision)
    return entry


def redo(pipeline: Pipeline, user: Any, *, revision: int | None = None, client: str = "") -> DraftEdit:
    """Redo the edit ``user`` undid last (drafts.NothingToDo, drafts.StaleEdit); returns it."""
    with transaction.atomic():
        _reload(pipeline)
        drafts.check_revision(pipeline, revision, client)
        entry, spec = drafts.take_redo(pipeline, user)
        store(pipeline, spec, user=user, client=client, label=f"Redo: {entry.label}", kind="redo", of=entry)
        drafts.mark(entry, DraftEdit.State.DONE, None)
    return entry


def discard_draft(pipeline: Pipeline, user: Any, *, revision: int | None = None, client: str = "") -> int:
    """Bring the draft back to the latest saved version (an edit: Undo brings the draft back); returns
    that version's number. PipelineError when there is nothing to discard."""
    with transaction.atomic():
        _reload(pipeline)
        drafts.check_revision(pipeline, revision, client)
        latest = pipeline.latest_version()
        if latest is None:
            raise PipelineError("This pipeline has no saved version to go back to.")
        if not pipeline.has_unsaved_changes(latest):
            raise PipelineError(f"Nothing to discard: the draft is the same as version {latest.number}.")
        store(pipeline, copy.deepcopy(latest.spec), user=user, client=client, label="Discard draft")
    return latest.number


def changes_since(pipeline: Pipeline, revision: int) -> str:
    """Unified diff of the draft's YAML from ``revision`` to now (blank when no longer known)."""
    old = drafts.spec_at(pipeline, revision)
    if old is None:
        return ""
    lines = difflib.unified_diff(
        pipeline_yaml(pipeline, old).splitlines(keepends=True),
        pipeline_yaml(pipeline).splitlines(keepends=True),
        fromfile=f"revision {revision} (yours)",
        tofile=f"revision {pipeline.revision} (now)",
    )
    return "".join(lines)


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
    """Record the current spec as a new immutable version (only a valid draft that changed can be saved)."""
    if not pipeline.is_valid:
        raise PipelineError(
            "this pipeline has errors: fix them before saving a version (your changes are kept as a draft)"
        )
    with transaction.atomic():
        latest = pipeline.latest_version()
        if latest is not None and latest.spec == pipeline.spec:
            raise PipelineError(f"Nothing to save: the draft is the same as version {latest.number}.")
        return PipelineVersion.objects.create(
            pipeline=pipeline,
            number=next_number(pipeline),
            spec=copy.deepcopy(pipeline.spec),
            author=user if user is not None and user.is_authenticated else None,
            message=message.strip()[:500],
        )


def restore(pipeline: Pipeline, number: int, user: Any = None, client: str = "") -> PipelineVersion:
    """Make version ``number`` current again, as a new version (Undo brings back the draft it replaced)."""
    old = pipeline.versions.filter(number=number).first()
    if old is None:
        raise PipelineError(f"there is no version {number}")
    latest = pipeline.latest_version()
    if latest is not None and latest.spec == old.spec:
        raise PipelineError(f"version {number} is the same as the latest version, {latest.number}")
    with transaction.atomic():
        store(pipeline, copy.deepcopy(old.spec), user=user, client=client, label=f"Restore version {number}")
        if not pipeline.is_valid:
            raise PipelineError(f"version {number} no longer validates: {pipeline.errors[0]['message']}")
        return save_version(pipeline, user, f"Restored version {number}")


def pipeline_yaml(pipeline: Pipeline, spec: dict[str, Any] | None = None) -> str:
    """One pipeline's YAML (default: its current spec), as downloaded and shown in the YAML tab: its
    variables and secrets declared, its ``needs`` kept."""
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


def other_pipelines(project: Project, but: str | None = None) -> dict[str, list[str]]:
    """The project's pipelines other than ``but`` and what each needs (what a loaded file may name)."""
    return {p.name: p.needs for p in project.pipelines.only("name", "spec") if p.name != but}


def apply_yaml(
    pipeline: Pipeline, text: str, *, revision: int | None = None, user: Any = None, client: str = ""
) -> Checked:
    """Replace the pipeline with the one in ``text`` (the YAML tab); SpecError, changing nothing, if bad;
    drafts.StaleEdit when the text was made on a revision someone else has changed since."""
    variables, secrets = reference_context(pipeline.project)
    others = other_pipelines(pipeline.project, but=pipeline.name)
    root = team_data_root(pipeline.project.team)
    spec = load_project_yaml(text, variables, secrets, source="YAML", pipelines=others, data_root=root)
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
        _reload(pipeline)
        drafts.check_revision(pipeline, revision, client)
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
        return store(pipeline, new, user=user, client=client, label="Apply YAML")


_UNSET = object()


def _is_default_declaration(name: str, declaration: Any) -> bool:
    """The declaration an export writes for a team secret (``env_secret`` named after it)."""
    return (
        declaration.plugin == "env_secret" and declaration.args == {"name": name} and declaration.id is None
    )


def set_needs(
    pipeline: Pipeline, needs: list[str], user: Any = None, label: str = ""
) -> PipelineVersion | None:
    """Change what ``pipeline`` runs after. Runs use saved versions, so a pipeline without unsaved changes
    gets a new version at once (returned); otherwise the change waits in its draft for the next save."""
    with transaction.atomic():
        _reload(pipeline)
        latest = pipeline.latest_version()
        clean = latest is not None and not pipeline.has_unsaved_changes(latest)
        edit(pipeline, lambda spec: spec.__setitem__("needs", needs), user=user, label=label)
        if clean and pipeline.is_valid and pipeline.has_unsaved_changes(latest):
            return save_version(pipeline, user, label)
    return None


def delete_pipeline(pipeline: Pipeline, user: Any = None) -> None:
    """Delete a pipeline; the pipelines that needed it stop needing it."""
    with transaction.atomic():
        for other in Pipeline.objects.filter(project_id=pipeline.project_id).exclude(pk=pipeline.pk):
            if pipeline.name in other.needs:
                remaining = [n for n in other.needs if n != pipeline.name]
                set_needs(other, remaining, user, f"No longer needs {pipeline.name} (deleted)")
        pipeline.delete()
