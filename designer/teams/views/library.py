"""The team library page, templates ("Use template") and "Copy to team"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from designer.editor.models import Project
from designer.teams import activity, library
from designer.teams.models import Role
from designer.web import (
    HtmxHttpRequest,
    can,
    get_pipeline_for,
    get_project_for,
    get_team_for,
    go_to,
    next_url,
)


@login_required
@require_GET
def library_page(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """All pipelines and projects of the team, searchable by name, tag, plugin used and author."""
    obj = get_team_for(request, team)
    query = library.LibraryQuery.from_params(request.GET)
    pipelines = library.search_pipelines(obj, query)
    context = {
        "team": obj,
        "query": query,
        "pipelines": pipelines,
        "projects": library.search_projects(obj, query, pipelines),
        "facets": library.facets(obj),
        "can_edit": can(request.user, obj, Role.EDITOR),
        "team_projects": list(Project.objects.filter(team=obj).order_by("name")),
    }
    template = "teams/library.html"
    if request.htmx.target == "library-results":
        template += "#results"
    return render(request, template, context)


@login_required
@require_POST
def pipeline_template(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Editor: mark (``is_template=1``) or unmark (``is_template=0``) a pipeline as a template."""
    obj = get_pipeline_for(request, team, project, pipeline, Role.EDITOR)
    wanted = request.POST.get("is_template", "1") in {"1", "on", "true"}
    library.set_template(obj, wanted)
    activity.record(
        obj.project.team,
        request.user,
        "marked_template" if wanted else "unmarked_template",
        obj,
        object_type="pipeline",
        url=obj.editor_url(),
    )
    if request.htmx:
        return render(
            request,
            "teams/_template_toggle.html",
            {"pipeline": obj, "team": obj.project.team, "can_edit": True},
        )
    messages.success(request, f"{obj.name} is {'now' if wanted else 'no longer'} a template.")
    return redirect(next_url(request, reverse("designer-library", kwargs={"team": team})))


@login_required
@require_http_methods(["GET", "POST"])
def template_use(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Editor: copy a template into a team project (a free name; version 1 "Created from template X")."""
    template = get_pipeline_for(request, team, project, pipeline, Role.EDITOR)
    if not template.is_template:
        raise Http404("Not a template")
    targets = list(Project.objects.filter(team=template.project.team).order_by("name"))
    if request.method == "POST":
        target = get_project_for(request, team, request.POST.get("project", ""), Role.EDITOR)
        created = library.use_template(template, target, request.user)
        url = created.editor_url()
        activity.record(
            target.team,
            request.user,
            "used_template",
            created,
            object_type="pipeline",
            url=url,
            detail=f"from template {template.name}",
        )
        messages.success(request, f"Created {created.name} in {target.name} from template {template.name}.")
        return go_to(request, url)
    return render(
        request,
        "teams/use_template.html",
        {"team": template.project.team, "template": template, "targets": targets},
    )


@login_required
@require_http_methods(["GET", "POST"])
def pipeline_copy(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Viewer of the source: copy a pipeline into a project of a team where the user is editor or owner."""
    source = get_pipeline_for(request, team, project, pipeline)
    targets = library.editable_projects(request.user)
    if request.method == "POST":
        target_team, _, target_project = request.POST.get("target", "").partition("/")
        target = get_project_for(request, target_team, target_project, Role.EDITOR)
        created = library.copy_to_team(source, target, request.user)
        url = created.editor_url()
        detail = f"from {source.project.team.name} / {source.project.name}"
        activity.record(
            target.team, request.user, "copied", created, object_type="pipeline", url=url, detail=detail
        )
        messages.success(
            request, f"Copied {source.name} to {target.team.name} / {target.name} as {created.name}."
        )
        return go_to(request, url)
    return render(
        request,
        "teams/copy_pipeline.html",
        {"team": source.project.team, "pipeline": source, "targets": targets},
    )
