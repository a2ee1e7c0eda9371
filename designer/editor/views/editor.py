"""The pipeline editor: palette, phase lanes, step forms; every change through htmx.

Each change carries the draft's revision it was made on (``revision``) and the browser tab that made it
(``client``); a change made on a revision someone else has changed since is refused with what changed
(``drafts.StaleEdit``), never applied over it. Undo, redo, discard, save and the YAML tab: views/drafts.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, trigger_client_event

from designer import limits
from designer.editor import drafts, edits, pipelines as service
from designer.editor.board import build_lanes, find_view, palette, step_errors
from designer.editor.definitions import secret_names
from designer.editor.models import Pipeline
from designer.editor.schema_forms import errors_by_field, fields_for, parse_args
from designer.runs import dashboard, outputs, selection
from designer.teams.models import Role
from designer.web import can, get_pipeline_for
from orchestrator import allowed_phases, registry

#: the client event after which the page refreshes an open step form (undo, redo, a colleague's edit...)
DRAFT_REPLACED = "draft-replaced"


def _secret_choices(pipeline: Pipeline) -> list[str]:
    """Names of the team's secrets, offered as ``${{ secrets.X }}`` in secret fields."""
    return sorted(secret_names(pipeline.project))


def board_context(request: HttpRequest, pipeline: Pipeline, **extra: Any) -> dict[str, Any]:
    """Everything the canvas, the YAML panel and the status bar need."""
    lanes, general = build_lanes(pipeline.spec, pipeline.errors)
    project = pipeline.project
    kwargs = {"team": project.team.slug, "project": project.slug, "pipeline": pipeline.name}
    urls = {
        name.replace("-", "_"): reverse(f"designer-{name}", kwargs=kwargs)
        for name in ("step-form", "step-remove")
    }
    if extra.pop("with_yaml", False) and "yaml_text" not in extra:
        extra["yaml_text"] = service.pipeline_yaml(pipeline)
    latest = pipeline.latest_version()
    can_edit = can(request.user, project.team, Role.EDITOR)
    return {
        "urls": urls,
        "pipeline": pipeline,
        "project": project,
        "team": project.team,
        "lanes": lanes,
        "general_errors": general,
        "can_edit": can_edit,
        "types": ["ETL", "ELT", "ETLT"],
        "allowed_by_type": {t: allowed_phases(t) for t in ("ETL", "ELT", "ETLT")},
        "merge_plugins": [p["name"] for g in palette() if g["kind"] == "merge" for p in g["plugins"]],
        "latest": latest,
        "unsaved": pipeline.has_unsaved_changes(latest),
        # read only where the status bar is rendered
        "undo": SimpleLazyObject(
            lambda: drafts.undo_state(pipeline, request.user) if can_edit else drafts.UndoState()
        ),
        # each step card's state in the pipeline's latest run: read once, and only if a card is rendered
        "step_states": SimpleLazyObject(lambda: dashboard.latest_step_states(pipeline)),
        **extra,
    }


def _changed(request: HttpRequest, pipeline: Pipeline, **extra: Any) -> HttpResponse:
    """The canvas (the target), with the YAML panel and status refreshed out of band."""
    return render(request, "editor/_changed.html", board_context(request, pipeline, **extra))


def _editable(request: HttpRequest, team: str, project: str, pipeline: str) -> Pipeline:
    return get_pipeline_for(request, team, project, pipeline, role=Role.EDITOR)


def who(request: HttpRequest) -> dict[str, Any]:
    """The revision an edit was made on, the browser tab that sent it and its user (``pipelines.edit``)."""
    return {
        "revision": drafts.parse_revision(request.POST.get("revision")),
        "client": request.POST.get("client", "")[: limits.CLIENT],
        "user": request.user,
    }


def stale(request: HttpRequest, pipeline: Pipeline, exc: drafts.StaleEdit, **extra: Any) -> HttpResponse:
    """A refused stale edit: the current pipeline, the reason and what changed since (a diff)."""
    pipeline.refresh_from_db()
    diff = service.changes_since(pipeline, exc.since)
    context = {"notice": str(exc), "notice_kind": "error", "conflict_diff": diff, **extra}
    return trigger_client_event(_changed(request, pipeline, **context), DRAFT_REPLACED)


def _index(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@login_required
@require_GET
def editor(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """The editor page."""
    obj = get_pipeline_for(request, team, project, pipeline)
    # what "with upstream" adds (its saved version's needs; read only when it needs something)
    upstream = selection.upstream_of(obj.project, [obj.name]) if obj.needs else []
    context = board_context(
        request,
        obj,
        palette=palette(),
        secret_names=_secret_choices(obj),
        can_run=can(request.user, obj.project.team, Role.RUNNER),
        active_run=dashboard.active_run_id(obj),
        upstream=upstream,
        upstream_default=bool(upstream and selection.never_succeeded(obj.project, upstream)),
    )
    return render(request, "editor/editor.html", context)


@login_required
@require_GET
def canvas(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """The lanes alone (htmx refresh); ``?since=N``: after a colleague's change, says what changed."""
    obj = get_pipeline_for(request, team, project, pipeline)
    since = drafts.parse_revision(request.GET.get("since"))
    extra: dict[str, Any] = {}
    if since is not None and since < obj.revision:
        extra = {"notice": drafts.changed_by(obj, since), "notice_kind": "warning"}
    return trigger_client_event(_changed(request, obj, **extra), DRAFT_REPLACED)


def _apply(request: HttpRequest, pipeline: Pipeline, change: Any, label: str) -> HttpResponse:
    try:
        result = service.edit(pipeline, change, label=label, **who(request))
    except drafts.StaleEdit as exc:
        return stale(request, pipeline, exc)
    except edits.EditError as exc:
        return _changed(request, pipeline, notice=str(exc), notice_kind="error")
    return _changed(request, pipeline, **(result if isinstance(result, dict) else {}))


@login_required
@require_POST
def step_add(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Add a step of a plugin at a position of a lane (a drop from the palette); its form opens."""
    obj = _editable(request, team, project, pipeline)
    data = request.POST
    phase, slot, plugin = data.get("phase", ""), data.get("slot", "steps"), data.get("plugin", "")
    try:
        step_id = service.edit(
            obj,
            lambda spec: edits.add_step(spec, phase, slot, plugin, _index(data.get("index"))),
            label=f"Add {plugin} to {phase}",
            **who(request),
        )
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except edits.EditError as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="error")
    context = board_context(request, obj, selected=f"{phase}:{step_id}")
    form = _step_form_context(request, obj, phase, step_id)
    context["inspector_html"] = render_to_string("editor/_step_form.html", form, request=request)
    return render(request, "editor/_changed.html", context)


@login_required
@require_POST
def step_move(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Move a step within its lane or to another lane that takes its kind."""
    obj = _editable(request, team, project, pipeline)
    data = request.POST
    phase, step_id = data.get("phase", ""), data.get("id", "")
    to_phase = data.get("to_phase") or phase
    to_slot = data.get("to_slot", "steps")
    to_index = _index(data.get("to_index")) or 0
    same_lane = to_phase == phase and to_slot == data.get("slot", "steps") and bool(data.get("slot"))

    def change(spec: dict[str, Any]) -> None:
        edits.move_step(spec, phase, step_id, to_phase, to_slot, to_index)

    label = f"Move {step_id}" if same_lane else f"Move {step_id} to {to_phase}"
    if not same_lane:
        return _apply(request, obj, change, label)
    # The browser already shows the new order: answer with the status bar only (no canvas swap).
    try:
        service.edit(obj, change, label=label, **who(request))
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except edits.EditError as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="error")
    return reswap(render(request, "editor/_status.html", board_context(request, obj, oob=True)), "none")


@login_required
@require_POST
def step_remove(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Remove a step (no confirmation: Undo brings it back)."""
    obj = _editable(request, team, project, pipeline)
    phase, step_id = request.POST.get("phase", ""), request.POST.get("id", "")

    def change(spec: dict[str, Any]) -> dict[str, Any]:
        edits.remove_step(spec, phase, step_id)
        return {"notice": f"Removed {step_id}: Undo (Ctrl+Z) brings it back.", "notice_kind": "ok"}

    response = _apply(request, obj, change, f"Remove {step_id}")
    return trigger_client_event(response, "step-removed")


def _step_form_context(
    request: HttpRequest, pipeline: Pipeline, phase: str, step_id: str, **extra: Any
) -> Any:
    _slot, _i, step = edits.find_step(pipeline.spec, phase, step_id)
    plugin = step.get("plugin", "")
    known = plugin in registry
    schema = registry.describe(plugin)["args_schema"] if known else {}
    by_field, general = errors_by_field(
        step_errors(pipeline.spec, pipeline.errors, phase, step_id), (schema.get("properties") or {}).keys()
    )
    for name, messages in (extra.pop("parse_errors", None) or {}).items():
        by_field.setdefault(name, []).extend(messages)
    # the columns this step reads, once a preview or run reported them (its form offers them)
    columns = outputs.input_columns(pipeline.project_id, pipeline.name, pipeline.spec, f"{phase}.{step_id}")
    fields = fields_for(schema, extra.pop("args", None) or step.get("args") or {}, by_field, columns)
    return {
        "pipeline": pipeline,
        "project": pipeline.project,
        "team": pipeline.project.team,
        "phase": phase,
        "step": step,
        "plugin": {"name": plugin, "description": registry.get(plugin).description} if known else None,
        "fields": fields,
        "step_general_errors": general,
        "has_problems": bool(general) or any(f.errors for f in fields),
        "secret_names": _secret_choices(pipeline),
        "can_edit": can(request.user, pipeline.project.team, Role.EDITOR),
        "can_run": can(request.user, pipeline.project.team, Role.RUNNER),
        "input_columns": columns,
        **extra,
    }


@login_required
@require_GET
def step_form(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """The argument form of one step, rendered from its plugin's JSON schema."""
    obj = get_pipeline_for(request, team, project, pipeline)
    phase, step_id = request.GET.get("phase", ""), request.GET.get("id", "")
    try:
        context = _step_form_context(request, obj, phase, step_id)
    except edits.EditError as exc:
        return render(request, "editor/_inspector_empty.html", {"notice": str(exc)})
    return render(request, "editor/_step_form.html", context)


@login_required
@require_POST
def step_args(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Save a step's arguments from its form; errors come back next to the fields."""
    obj = _editable(request, team, project, pipeline)
    phase, step_id = request.POST.get("phase", ""), request.POST.get("id", "")
    try:
        _slot, _i, step = edits.find_step(obj.spec, phase, step_id)
    except edits.EditError as exc:
        return render(request, "editor/_inspector_empty.html", {"notice": str(exc)})
    plugin = step.get("plugin", "")
    schema = registry.describe(plugin)["args_schema"] if plugin in registry else {}
    too_long = {
        key[4:]: [f"at most {limits.ARGUMENT:,} characters (got {len(value):,}): not saved"]
        for key, value in request.POST.items()
        if key.startswith("arg-") and len(value) > limits.ARGUMENT
    }
    if too_long:
        context = _step_form_context(request, obj, phase, step_id, parse_errors=too_long)
        return render(request, "editor/_step_form.html", context)
    args, parse_errors = parse_args(schema, request.POST, step.get("args") or {})
    if plugin not in registry:
        args = step.get("args") or {}
    new_id = request.POST.get("new_id", "")
    try:
        new_id = service.edit(
            obj,
            lambda spec: edits.set_step(spec, phase, step_id, args, new_id),
            label=f"Edit {step_id}",
            **who(request),
        )
    except drafts.StaleEdit as exc:
        return _stale_form(request, obj, exc, phase, step_id, args)
    except edits.EditError as exc:
        context = _step_form_context(request, obj, phase, step_id, args=args, parse_errors=parse_errors)
        context["notice"] = str(exc)
        return render(request, "editor/_step_form.html", context)
    context = _step_form_context(request, obj, phase, new_id, parse_errors=parse_errors)
    context.update(board_context(request, obj, oob=True, selected=f"{phase}:{new_id}"))
    context["saved"] = True
    context["form_problems"] = sorted(parse_errors)  # typed text that could not be read: not saved
    # Only this step's card changes (argument errors belong to their step), unless it was renamed.
    context["step_view"] = None if new_id != step_id else find_view(context["lanes"], phase, new_id)
    return render(request, "editor/_step_saved.html", context)


def _stale_form(
    request: HttpRequest, pipeline: Pipeline, exc: drafts.StaleEdit, phase: str, step_id: str, args: Any
) -> HttpResponse:
    """The step form with what was typed (not saved) and the conflict; the page shows the current draft."""
    pipeline.refresh_from_db()
    diff = service.changes_since(pipeline, exc.since)
    try:
        context = _step_form_context(request, pipeline, phase, step_id, args=args)
    except edits.EditError:  # the step is gone meanwhile
        context = {"notice": f"{exc} The step {step_id} no longer exists."}
        return render(request, "editor/_inspector_empty.html", context)
    context.update(board_context(request, pipeline, oob=True, conflict_diff=diff))
    context.update(notice=str(exc), notice_kind="error", conflict=True, step_view=None)
    return render(request, "editor/_step_saved.html", context)


@login_required
@require_POST
def set_type(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Switch the pipeline type; steps in phases the new type lacks are dropped only when confirmed."""
    obj = _editable(request, team, project, pipeline)
    new_type = request.POST.get("type", "")
    dropped = edits.steps_dropped_by_type(obj.spec, new_type)
    if dropped and request.POST.get("confirm") != "1":
        listed = ", ".join(dropped)
        message = f"Switching to {new_type} would drop {len(dropped)} step(s): {listed}. Nothing changed."
        return _changed(request, obj, notice=message, notice_kind="error")

    def change(spec: dict[str, Any]) -> dict[str, Any]:
        gone = edits.change_type(spec, new_type)
        if gone:
            return {"notice": f"Dropped {len(gone)} step(s): {', '.join(gone)}", "notice_kind": "warning"}
        return {}

    return _apply(request, obj, change, f"Change type to {new_type}")


@login_required
@require_POST
def set_merge(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Choose (or clear) the extract merge plugin."""
    obj = _editable(request, team, project, pipeline)
    plugin = request.POST.get("plugin") or None
    label = f"Merge with {plugin}" if plugin else "Clear the merge"
    return _apply(request, obj, lambda spec: edits.set_merge(spec, plugin), label)


@login_required
@require_POST
def set_details(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Description and tags."""
    obj = _editable(request, team, project, pipeline)
    description = request.POST.get("description", "").strip()
    raw_tags = request.POST.get("tags", "")
    if len(description) > limits.DESCRIPTION or len(raw_tags) > limits.TAGS:
        message = (
            f"The description may hold up to {limits.DESCRIPTION:,} characters and the tags up to "
            f"{limits.TAGS} (got {len(description):,} and {len(raw_tags):,}): nothing changed."
        )
        return _changed(request, obj, notice=message, notice_kind="error")
    tags = [t.strip() for t in raw_tags.split(",") if t.strip()]
    obj.tags = tags
    obj.save(update_fields=["tags", "updated_at"])

    def change(spec: dict[str, Any]) -> None:
        if description:
            spec["description"] = description
        else:
            spec.pop("description", None)

    return _apply(request, obj, change, "Edit the details")
