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
from designer.web import HtmxHttpRequest, get_pipeline_for, get_project_for, go_to


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
def history(request: HttpRequest, **kw: str) -> HttpResponse:
    """The versions of a pipeline, newest first, with a diff picker."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    versions = pipeline.versions.select_related("author").order_by("-number")
    context = {
        "pipeline": pipeline,
        "project": pipeline.project,
        "team": pipeline.project.team,
        "versions": versions,
    }
    return render(request, "editor/_history.html", context)


@login_required
@require_GET
def diff(request: HttpRequest, **kw: str) -> HttpResponse:
    """Unified diff of the YAML of two versions (``a``, ``b``; empty means the current draft)."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    a, b = _version_numbers(request, "a"), _version_numbers(request, "b")
    try:
        text = service.diff_versions(pipeline, a, b)
        error = ""
    except service.PipelineError as exc:
        text, error = "", str(exc)
    context = {"pipeline": pipeline, "diff": text, "error": error, "a": a, "b": b}
    return render(request, "editor/_diff.html", context)


@login_required
@require_POST
def restore(request: HtmxHttpRequest, number: int, **kw: str) -> HttpResponse:
    """Make an old version current again (as a new version)."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"], role=Role.EDITOR)
    try:
        version = service.restore(pipeline, number, request.user)
        activity.version_saved(version)
    except service.PipelineError as exc:
        if request.htmx:
            return _changed(request, pipeline, notice=str(exc), notice_kind="error")
        messages.error(request, str(exc))
        return redirect(pipeline.editor_url())
    if request.htmx:
        return HttpResponseClientRedirect(pipeline.editor_url())
    messages.success(request, f"Restored version {number} as version {version.number}")
    return redirect(pipeline.editor_url())


@login_required
@require_GET
def pipeline_download(request: HttpRequest, **kw: str) -> HttpResponse:
    """The pipeline's YAML as a file (a project file holding just this pipeline)."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"])
    response = HttpResponse(service.pipeline_yaml(pipeline), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{pipeline.name}.yaml"'
    return response


@login_required
@require_POST
def pipeline_delete(request: HtmxHttpRequest, **kw: str) -> HttpResponse:
    """Delete a pipeline (and its versions); pipelines that needed it stop needing it."""
    pipeline = get_pipeline_for(request, kw["team"], kw["project"], kw["pipeline"], role=Role.EDITOR)
    project = pipeline.project
    service.delete_pipeline(pipeline)
    activity.record(
        project.team,
        request.user,
        "deleted",
        object_type="pipeline",
        object_name=f"{project.name} / {kw['pipeline']}",
    )
    messages.success(request, f"Deleted pipeline {kw['pipeline']}")
    return go_to(
        request, reverse("designer-project", kwargs={"team": project.team.slug, "project": project.slug})
    )
