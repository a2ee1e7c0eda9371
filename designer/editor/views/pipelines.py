"""Pipelines: create, history with diffs and restore, single-pipeline YAML download, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from designer.editor import pipelines as service
from designer.editor.views.editor import _changed
from designer.teams import activity
from designer.teams.models import Role
from designer.web import HtmxHttpRequest, can, get_pipeline_for, get_project_for, go_to


@login_required
@require_POST
def pipeline_create(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Create an empty pipeline and open it in the editor."""
    the_project = get_project_for(request, team, project, role=Role.EDITOR)
    try:
        pipeline = service.create_pipeline(
            the_project,
            request.POST.get("name", ""),
            request.POST.get("type", "ETL"),
            request.user,
            request.POST.get("description", ""),
        )
    except service.PipelineError as exc:
        messages.error(request, str(exc))
        return redirect("designer-project", team=team, project=project)
    activity.pipeline_created(pipeline)
    return go_to(request, pipeline.editor_url())


def _version_numbers(request: HttpRequest, key: str) -> int | None:
    value = request.GET.get(key, "")
    return int(value) if value.isdigit() else None


@login_required
@require_GET
def history(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """The versions of a pipeline, newest first, with a diff picker."""
    obj = get_pipeline_for(request, team, project, pipeline)
    versions = list(obj.versions.select_related("author").order_by("-number"))
    context = {
        "pipeline": obj,
        "project": obj.project,
        "team": obj.project.team,
        "versions": versions,
        "unsaved": obj.has_unsaved_changes(versions[0] if versions else None),
        "can_edit": can(request.user, obj.project.team, Role.EDITOR),
    }
    return render(request, "editor/_history.html", context)


@login_required
@require_GET
def diff(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Unified diff of the YAML of two versions (``a``, ``b``; empty means the current draft)."""
    obj = get_pipeline_for(request, team, project, pipeline)
    a, b = _version_numbers(request, "a"), _version_numbers(request, "b")
    try:
        text = service.diff_versions(obj, a, b)
        error = ""
    except service.PipelineError as exc:
        text, error = "", str(exc)
    context = {"pipeline": obj, "diff": text, "error": error, "a": a, "b": b}
    return render(request, "editor/_diff.html", context)


@login_required
@require_POST
def restore(request: HtmxHttpRequest, team: str, project: str, pipeline: str, number: int) -> HttpResponse:
    """Make an old version current again (as a new version)."""
    obj = get_pipeline_for(request, team, project, pipeline, role=Role.EDITOR)
    try:
        version = service.restore(obj, number, request.user, request.POST.get("client", "")[:40])
        activity.version_saved(version)
    except service.PipelineError as exc:
        if request.htmx:
            return _changed(request, obj, notice=str(exc), notice_kind="error")
        messages.error(request, str(exc))
        return redirect(obj.editor_url())
    if request.htmx:
        return HttpResponseClientRedirect(obj.editor_url())
    messages.success(request, f"Restored version {number} as version {version.number}")
    return redirect(obj.editor_url())


@login_required
@require_GET
def pipeline_download(request: HttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """The pipeline's YAML as a file (a project file holding just this pipeline)."""
    obj = get_pipeline_for(request, team, project, pipeline)
    response = HttpResponse(service.pipeline_yaml(obj), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{obj.name}.yaml"'
    return response


@login_required
@require_POST
def pipeline_delete(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Delete a pipeline (and its versions); pipelines that needed it stop needing it."""
    obj = get_pipeline_for(request, team, project, pipeline, role=Role.EDITOR)
    the_project = obj.project
    service.delete_pipeline(obj, request.user)
    activity.record(
        the_project.team,
        request.user,
        "deleted",
        object_type="pipeline",
        object_name=f"{the_project.name} / {pipeline}",
    )
    messages.success(request, f"Deleted pipeline {pipeline}")
    return go_to(request, reverse("designer-project", kwargs={"team": team, "project": project}))
