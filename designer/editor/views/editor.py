"""The pipeline editor: palette, phase lanes, step forms, the YAML tab; every change through htmx."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from designer.editor import edits, pipelines as service
from designer.editor.board import build_lanes, find_view, palette, step_errors
from designer.editor.definitions import secret_names
from designer.editor.models import Pipeline
from designer.editor.schema_forms import errors_by_field, fields_for, parse_args
from designer.teams import activity
from designer.teams.models import Role
from designer.web import can, get_pipeline_for
from orchestrator import SpecError, allowed_phases, registry


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
    return {
        "urls": urls,
        "pipeline": pipeline,
        "project": project,
        "team": project.team,
        "lanes": lanes,
        "general_errors": general,
        "can_edit": can(request.user, project.team, Role.EDITOR),
        "types": ["ETL", "ELT", "ETLT"],
        "allowed_by_type": {t: allowed_phases(t) for t in ("ETL", "ELT", "ETLT")},
        "merge_plugins": [p["name"] for g in palette() if g["kind"] == "merge" for p in g["plugins"]],
        "latest": pipeline.latest_version(),
        **extra,
    }


def _changed(request: HttpRequest, pipeline: Pipeline, **extra: Any) -> HttpResponse:
    """The canvas (the target), with the YAML panel and status refreshed out of band."""
    return render(request, "editor/_changed.html", board_context(request, pipeline, **extra))


def _editable(request: HttpRequest, kw: dict[str, str]) -> Pipeline:
    return get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"], role=Role.EDITOR)


def _index(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@login_required
@require_GET
def editor(request: HttpRequest, **kw: str) -> HttpResponse:
    """The editor page."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    context = board_context(request, pipeline, palette=palette(), secret_names=_secret_choices(pipeline))
    return render(request, "editor/editor.html", context)


@login_required
@require_GET
def canvas(request: HttpRequest, **kw: str) -> HttpResponse:
    """The lanes alone (htmx refresh)."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    return _changed(request, pipeline)


def _apply(request: HttpRequest, pipeline: Pipeline, change: Any) -> HttpResponse:
    try:
        result = service.edit(pipeline, change)
    except edits.EditError as exc:
        return _changed(request, pipeline, notice=str(exc), notice_kind="error")
    return _changed(request, pipeline, **(result if isinstance(result, dict) else {}))


@login_required
@require_POST
def step_add(request: HttpRequest, **kw: str) -> HttpResponse:
    """Add a step of a plugin at a position of a lane (a drop from the palette); its form opens."""
    pipeline = _editable(request, kw)
    data = request.POST
    phase, slot, plugin = data.get("phase", ""), data.get("slot", "steps"), data.get("plugin", "")
    try:
        step_id = service.edit(
            pipeline, lambda spec: edits.add_step(spec, phase, slot, plugin, _index(data.get("index")))
        )
    except edits.EditError as exc:
        return _changed(request, pipeline, notice=str(exc), notice_kind="error")
    context = board_context(request, pipeline, selected=f"{phase}:{step_id}")
    form = _step_form_context(request, pipeline, phase, step_id)
    context["inspector_html"] = render_to_string("editor/_step_form.html", form, request=request)
    return render(request, "editor/_changed.html", context)


@login_required
@require_POST
def step_move(request: HttpRequest, **kw: str) -> HttpResponse:
    """Move a step within its lane or to another lane that takes its kind."""
    pipeline = _editable(request, kw)
    data = request.POST
    phase = data.get("phase", "")
    to_phase = data.get("to_phase") or phase
    to_index = _index(data.get("to_index")) or 0
    same_lane = to_phase == phase and data.get("to_slot", "steps") == data.get("slot", "steps")
    if same_lane and data.get("slot"):
        # The browser already shows the new order: answer with the status bar only (no canvas swap).
        try:
            service.edit(
                pipeline,
                lambda spec: edits.move_step(
                    spec, phase, data.get("id", ""), to_phase, data["slot"], to_index
                ),
            )
        except edits.EditError as exc:
            return _changed(request, pipeline, notice=str(exc), notice_kind="error")
        response = render(request, "editor/_status.html", board_context(request, pipeline, oob=True))
        response["HX-Reswap"] = "none"
        return response
    return _apply(
        request,
        pipeline,
        lambda spec: edits.move_step(
            spec, phase, data.get("id", ""), to_phase, data.get("to_slot", "steps"), to_index
        ),
    )


@login_required
@require_POST
def step_remove(request: HttpRequest, **kw: str) -> HttpResponse:
    """Remove a step."""
    pipeline = _editable(request, kw)
    phase, step_id = request.POST.get("phase", ""), request.POST.get("id", "")
    response = _apply(request, pipeline, lambda spec: edits.remove_step(spec, phase, step_id))
    response["HX-Trigger"] = "step-removed"
    return response


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
    return {
        "pipeline": pipeline,
        "project": pipeline.project,
        "team": pipeline.project.team,
        "phase": phase,
        "step": step,
        "plugin": {"name": plugin, "description": registry.get(plugin).description} if known else None,
        "fields": fields_for(schema, extra.pop("args", None) or step.get("args") or {}, by_field),
        "step_general_errors": general,
        "secret_names": _secret_choices(pipeline),
        "can_edit": can(request.user, pipeline.project.team, Role.EDITOR),
        **extra,
    }


@login_required
@require_GET
def step_form(request: HttpRequest, **kw: str) -> HttpResponse:
    """The argument form of one step, rendered from its plugin's JSON schema."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    phase, step_id = request.GET.get("phase", ""), request.GET.get("id", "")
    try:
        context = _step_form_context(request, pipeline, phase, step_id)
    except edits.EditError as exc:
        return render(request, "editor/_inspector_empty.html", {"notice": str(exc)})
    return render(request, "editor/_step_form.html", context)


@login_required
@require_POST
def step_args(request: HttpRequest, **kw: str) -> HttpResponse:
    """Save a step's arguments from its form; errors come back next to the fields."""
    pipeline = _editable(request, kw)
    phase, step_id = request.POST.get("phase", ""), request.POST.get("id", "")
    try:
        _slot, _i, step = edits.find_step(pipeline.spec, phase, step_id)
    except edits.EditError as exc:
        return render(request, "editor/_inspector_empty.html", {"notice": str(exc)})
    plugin = step.get("plugin", "")
    schema = registry.describe(plugin)["args_schema"] if plugin in registry else {}
    args, parse_errors = parse_args(schema, request.POST, step.get("args") or {})
    if plugin not in registry:
        args = step.get("args") or {}
    try:
        new_id = service.edit(
            pipeline, lambda spec: edits.set_step(spec, phase, step_id, args, request.POST.get("new_id", ""))
        )
    except edits.EditError as exc:
        context = _step_form_context(request, pipeline, phase, step_id, args=args, parse_errors=parse_errors)
        context["notice"] = str(exc)
        return render(request, "editor/_step_form.html", context)
    context = _step_form_context(request, pipeline, phase, new_id, parse_errors=parse_errors)
    context.update(board_context(request, pipeline, oob=True, selected=f"{phase}:{new_id}"))
    context["saved"] = not parse_errors
    # Only this step's card changes (argument errors belong to their step), unless it was renamed.
    context["step_view"] = None if new_id != step_id else find_view(context["lanes"], phase, new_id)
    return render(request, "editor/_step_saved.html", context)


@login_required
@require_POST
def set_type(request: HttpRequest, **kw: str) -> HttpResponse:
    """Switch the pipeline type; steps in phases the new type lacks are dropped only when confirmed."""
    pipeline = _editable(request, kw)
    new_type = request.POST.get("type", "")
    dropped = edits.steps_dropped_by_type(pipeline.spec, new_type)
    if dropped and request.POST.get("confirm") != "1":
        listed = ", ".join(dropped)
        message = f"Switching to {new_type} would drop {len(dropped)} step(s): {listed}. Nothing changed."
        return _changed(request, pipeline, notice=message, notice_kind="error")

    def change(spec: dict[str, Any]) -> dict[str, Any]:
        gone = edits.change_type(spec, new_type)
        if gone:
            return {"notice": f"Dropped {len(gone)} step(s): {', '.join(gone)}", "notice_kind": "warning"}
        return {}

    return _apply(request, pipeline, change)


@login_required
@require_POST
def set_merge(request: HttpRequest, **kw: str) -> HttpResponse:
    """Choose (or clear) the extract merge plugin."""
    pipeline = _editable(request, kw)
    plugin = request.POST.get("plugin") or None
    return _apply(request, pipeline, lambda spec: edits.set_merge(spec, plugin))


@login_required
@require_POST
def set_details(request: HttpRequest, **kw: str) -> HttpResponse:
    """Description and tags."""
    pipeline = _editable(request, kw)
    description = request.POST.get("description", "").strip()
    tags = [t.strip() for t in request.POST.get("tags", "").split(",") if t.strip()]
    pipeline.tags = tags
    pipeline.save(update_fields=["tags", "updated_at"])

    def change(spec: dict[str, Any]) -> None:
        if description:
            spec["description"] = description
        else:
            spec.pop("description", None)

    return _apply(request, pipeline, change)


@login_required
def yaml_tab(request: HttpRequest, **kw: str) -> HttpResponse:
    """GET: the live YAML. POST: apply an edited YAML (valid: the lanes follow; invalid: nothing changes)."""
    if request.method == "GET":
        pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
        return render(request, "editor/_yaml.html", board_context(request, pipeline, with_yaml=True))
    if request.method != "POST":
        return HttpResponseBadRequest("GET or POST")
    pipeline = _editable(request, kw)
    text = request.POST.get("yaml", "")
    try:
        service.apply_yaml(pipeline, text)
    except SpecError as exc:
        context = board_context(request, pipeline, yaml_text=text, yaml_problems=exc.problems)
        response = render(request, "editor/_yaml.html", context)
        response["HX-Retarget"] = "#yaml-panel"
        response["HX-Reswap"] = "outerHTML"
        return response
    return _changed(
        request, pipeline, notice="YAML applied", notice_kind="ok", yaml_applied=True, with_yaml=True
    )


@login_required
@require_POST
def save_version(request: HttpRequest, **kw: str) -> HttpResponse:
    """Save the current pipeline as a new version with a message."""
    pipeline = _editable(request, kw)
    try:
        version = service.save_version(pipeline, request.user, request.POST.get("message", ""))
    except service.PipelineError as exc:
        return _changed(request, pipeline, notice=str(exc), notice_kind="error")
    activity.version_saved(version)
    return _changed(request, pipeline, notice=f"Saved version {version.number}", notice_kind="ok")
