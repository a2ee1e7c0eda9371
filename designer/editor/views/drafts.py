"""The draft as a whole: undo and redo (each author their own edits), discard back to the latest version,
save a version, and the YAML tab (the pipeline as downloaded; edited text applied as a whole)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import reswap, retarget, trigger_client_event

from designer import limits
from designer.editor import drafts, pipelines as service
from designer.editor.models import Pipeline
from designer.editor.views.editor import DRAFT_REPLACED, _changed, _editable, board_context, stale, who
from designer.teams import activity
from designer.teams.models import Role
from designer.web import get_pipeline_for
from orchestrator import Problem, SpecError

#: the most characters a version message and the YAML tab's text may hold


def _replaced(request: HttpRequest, pipeline: Pipeline, notice: str) -> HttpResponse:
    response = _changed(request, pipeline, notice=notice, notice_kind="ok")
    return trigger_client_event(response, DRAFT_REPLACED)


@login_required
@require_POST
def undo(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Undo your latest edit of this draft (refused when a colleague changed the draft since)."""
    obj = _editable(request, team, project, pipeline)
    try:
        entry = service.undo(obj, **who(request))
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except drafts.NothingToDo as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="warning")
    return _replaced(request, obj, f"Undone: {entry.label}")


@login_required
@require_POST
def redo(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Redo the edit you undid last."""
    obj = _editable(request, team, project, pipeline)
    try:
        entry = service.redo(obj, **who(request))
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except drafts.NothingToDo as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="warning")
    return _replaced(request, obj, f"Redone: {entry.label}")


@login_required
@require_POST
def discard(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Bring the draft back to the latest saved version (Undo brings the draft back)."""
    obj = _editable(request, team, project, pipeline)
    try:
        number = service.discard_draft(obj, **who(request))
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except service.PipelineError as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="warning")
    return _replaced(request, obj, f"Draft discarded: back to version {number} (Undo brings it back).")


@login_required
@require_POST
def save_version(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Save the current draft as a new version with a message (the draft the page shows: not a newer
    one a colleague made meanwhile)."""
    obj = _editable(request, team, project, pipeline)
    message = request.POST.get("message", "")
    if len(message) > limits.MESSAGE:
        notice = f"The message may hold up to {limits.MESSAGE} characters (got {len(message):,}): not saved."
        return _changed(request, obj, notice=notice, notice_kind="error")
    meta = who(request)
    try:
        drafts.check_revision(obj, meta["revision"], meta["client"])
        version = service.save_version(obj, request.user, message)
    except drafts.StaleEdit as exc:
        return stale(request, obj, exc)
    except service.PipelineError as exc:
        return _changed(request, obj, notice=str(exc), notice_kind="error")
    activity.version_saved(version)
    return _changed(request, obj, notice=f"Saved version {version.number}", notice_kind="ok")


def _yaml_panel(request: HttpRequest, pipeline: Pipeline, **extra: object) -> HttpResponse:
    """The YAML panel as the response's target, with the canvas and status refreshed out of band."""
    context = board_context(request, pipeline, oob_canvas=True, **extra)
    response = render(request, "editor/_yaml_response.html", context)
    return reswap(retarget(response, "#yaml-panel"), "outerHTML")


@login_required
@require_http_methods(["GET", "POST"])
def yaml_tab(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """GET: the pipeline's YAML, as downloaded (needs included). POST: apply an edited YAML: valid, the
    lanes follow; invalid, or made on a revision a colleague has changed since, nothing changes and the
    text stays in the tab."""
    if request.method == "GET":
        obj = get_pipeline_for(request, team, project, pipeline)
        return render(request, "editor/_yaml.html", board_context(request, obj, with_yaml=True))
    return _yaml_apply(request, get_pipeline_for(request, team, project, pipeline, role=Role.EDITOR))


def _yaml_apply(request: HttpRequest, obj: Pipeline) -> HttpResponse:
    text = request.POST.get("yaml", "")
    if len(text) > limits.YAML:
        problem = Problem(f"the text is too long: {len(text):,} characters, the limit is {limits.YAML:,}")
        return _yaml_panel(request, obj, yaml_text=text, yaml_problems=[problem], yaml_from_user=True)
    try:
        service.apply_yaml(obj, text, **who(request))
    except drafts.StaleEdit as exc:
        obj.refresh_from_db()
        diff = service.changes_since(obj, exc.since)
        response = _yaml_panel(
            request, obj, yaml_text=text, yaml_conflict=str(exc), conflict_diff=diff, yaml_from_user=True
        )
        return trigger_client_event(response, DRAFT_REPLACED)
    except SpecError as exc:
        notice = f"The YAML was not applied: {len(exc.problems)} problem(s), shown in the YAML tab."
        return _yaml_panel(
            request,
            obj,
            yaml_text=text,
            yaml_problems=exc.problems,
            yaml_from_user=True,
            notice=notice,
            notice_kind="error",
        )
    response = _changed(
        request, obj, notice="YAML applied", notice_kind="ok", yaml_applied=True, with_yaml=True
    )
    return trigger_client_event(trigger_client_event(response, "yaml-applied"), DRAFT_REPLACED)
