"""Home and project pages: the needs graph, concurrency, download and upload of the project YAML."""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from designer import limits
from designer.editor import projects as service
from designer.editor.graph import layout
from designer.editor.models import Pipeline, Project
from designer.teams import activity, crypto
from designer.teams.models import Role, Team
from designer.web import HtmxHttpRequest, can, get_project_for, get_team_for, go_to
from orchestrator import SpecError

MAX_UPLOAD_BYTES = 1_048_576
#: seconds a preview's "Apply import" stays good
SEALED_FOR = 3600


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The user's teams and their projects."""
    assert request.user.is_authenticated  # login_required
    teams = list(Team.objects.filter(memberships__user=request.user).prefetch_related("projects").distinct())
    for team in teams:
        team.can_edit = can(request.user, team, Role.EDITOR)  # type: ignore[attr-defined]
    return render(request, "editor/home.html", {"teams": teams})


def _url(project: Project) -> str:
    return reverse("designer-project", kwargs={"team": project.team.slug, "project": project.slug})


@login_required
@require_POST
def project_create(request: HttpRequest, team: str) -> HttpResponse:
    """Create a project in a team."""
    the_team = get_team_for(request, team, role=Role.EDITOR)
    name = request.POST.get("name", "").strip()
    slug = slugify(name)
    if not name or not slug:
        messages.error(request, "A project needs a name with at least one letter or digit.")
        return redirect("designer-home")
    if Project.objects.filter(team=the_team, slug=slug).exists():
        messages.error(request, f"Team {the_team.name} already has a project '{slug}'.")
        return redirect("designer-home")
    project = Project.objects.create(team=the_team, name=name, slug=slug)
    activity.record(the_team, request.user, "created", project, object_type="project", url=_url(project))
    return redirect("designer-project", team=team, project=project.slug)


def _graph(project: Project) -> dict[str, Any]:
    pipelines = list(project.pipelines.all())
    urls = {p.name: p.editor_url() for p in pipelines}
    return layout({p.name: p.needs for p in pipelines}, {p.name: p.is_valid for p in pipelines}, urls)


def _graph_data(pipelines: list[Pipeline]) -> dict[str, list[dict[str, object]]]:
    """Nodes and edges for the client-side graph (``source`` runs before ``target``)."""
    return {
        "nodes": [
            {"id": p.name, "valid": p.is_valid, "type": p.type, "url": p.editor_url()} for p in pipelines
        ],
        "edges": [{"source": need, "target": p.name} for p in pipelines for need in p.needs],
    }


def _project_context(request: HttpRequest, project: Project, **extra: object) -> dict[str, object]:
    pipelines = list(project.pipelines.all().order_by("name"))
    return {
        "graph_data": _graph_data(pipelines),
        "project": project,
        "team": project.team,
        "pipelines": pipelines,
        "edges": [(p.name, need) for p in pipelines for need in p.needs],
        "graph": _graph(project),
        "can_edit": can(request.user, project.team, Role.EDITOR),
        "can_run": can(request.user, project.team, Role.RUNNER),
        **extra,
    }


@login_required
@require_GET
def project_detail(request: HttpRequest, team: str, project: str) -> HttpResponse:
    """The project page: pipelines, their needs graph, settings, download and upload."""
    the_project = get_project_for(request, team, project)
    return render(request, "editor/project.html", _project_context(request, the_project))


@login_required
@require_GET
def project_graph(request: HttpRequest, team: str, project: str) -> JsonResponse:
    """The needs graph as JSON: nodes and edges (``source`` runs before ``target``)."""
    the_project = get_project_for(request, team, project)
    return JsonResponse(_graph_data(list(the_project.pipelines.all().order_by("name"))))


def _graph_response(request: HtmxHttpRequest, project: Project, **extra: object) -> HttpResponse:
    if request.htmx:  # the graph, and the pipelines table's "needs" column out of band
        context = _project_context(request, project, oob_table=True, **extra)
        return render(request, "editor/_project_graph.html", context)
    for key in ("notice", "graph_error"):
        if extra.get(key):
            (messages.error if key == "graph_error" else messages.success)(request, str(extra[key]))
    return redirect("designer-project", team=project.team.slug, project=project.slug)


@login_required
@require_POST
def project_needs(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Add (``action=add``) or remove an edge: pipeline ``pipeline`` needs ``needs``."""
    the_project = get_project_for(request, team, project, role=Role.EDITOR)
    pipeline = Pipeline.objects.filter(project=the_project, name=request.POST.get("pipeline", "")).first()
    needed = request.POST.get("needs", "")
    if pipeline is None:
        return _graph_response(request, the_project, graph_error="Choose a pipeline.")
    try:
        if request.POST.get("action", "add") == "remove":
            service.remove_need(pipeline, needed, request.user)
            notice = f"{pipeline.name} no longer needs {needed}"
        else:
            service.add_need(the_project, pipeline, needed, request.user)
            notice = f"{pipeline.name} now runs after {needed}"
    except service.ProjectError as exc:
        return _graph_response(request, the_project, graph_error=str(exc))
    return _graph_response(request, the_project, notice=notice)


@login_required
@require_POST
def project_settings(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Concurrency (pipelines at once) and description."""
    the_project = get_project_for(request, team, project, role=Role.EDITOR)
    raw = request.POST.get("concurrency", "")
    description = request.POST.get("description", the_project.description).strip()
    error = ""
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        error = f"Concurrency must be a whole number from 1 to 1000, got '{raw[:20]}'."
    else:
        try:
            limits.check_length("The description", description, limits.DESCRIPTION)
        except limits.TooLong as exc:
            error = f"{exc} Nothing changed."
    if error:
        if request.htmx:
            return render(
                request,
                "editor/_project_settings.html",
                _project_context(request, the_project, settings_error=error),
            )
        messages.error(request, error)
        return redirect("designer-project", team=team, project=project)
    the_project.concurrency = int(raw)
    the_project.description = description
    if "keep_outputs_present" in request.POST:  # runs keep their steps' tables, for resume
        the_project.keep_outputs = request.POST.get("keep_outputs") == "on"
    the_project.save(update_fields=["concurrency", "description", "keep_outputs", "updated_at"])
    activity.record(
        the_project.team,
        request.user,
        "changed",
        the_project,
        object_type="project",
        url=_url(the_project),
        detail=f"concurrency {the_project.concurrency}",
    )
    if request.htmx:
        return render(
            request,
            "editor/_project_settings.html",
            _project_context(request, the_project, settings_saved=True),
        )
    return redirect("designer-project", team=team, project=project)


@login_required
@require_GET
def project_download(request: HttpRequest, team: str, project: str) -> HttpResponse:
    """The project file (YAML): every valid pipeline, its variables and concurrency."""
    the_project = get_project_for(request, team, project)
    try:
        text = service.export_project(the_project)
    except service.ProjectError as exc:
        messages.error(request, str(exc))
        return redirect("designer-project", team=team, project=project)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{the_project.slug}.yaml"'
    return response


def _seal(project: Project, filename: str, text: str) -> str:
    """The previewed file for the preview's "Apply import", encrypted: the page never shows the file again
    (it may hold secret values, which are never stored either), and it is good for this project only."""
    payload = {"project": project.pk, "filename": filename, "text": text, "at": time.time()}
    return crypto.encrypt(json.dumps(payload))[0]


def _unseal(project: Project, sealed: str) -> tuple[str, str | None, list[object]]:
    try:
        payload = json.loads(crypto.decrypt(sealed))
    except (crypto.SecretDecryptionError, ValueError, UnicodeError):
        payload = {}
    filename = str(payload.get("filename") or "project.yaml")
    if payload.get("project") != project.pk or time.time() - float(payload.get("at") or 0) > SEALED_FOR:
        return filename, None, [_plain("This preview has expired: upload the file again.")]
    return filename, str(payload.get("text") or ""), []


def _uploaded_text(
    request: HtmxHttpRequest, project: Project
) -> tuple[str, bytes | str | None, list[object]]:
    """(file name, text, problems) of an upload: the file itself, or the previewed one ("Apply import")."""
    upload = request.FILES.get("file")
    if upload is None and "sealed" in request.POST:
        return _unseal(project, request.POST["sealed"][: MAX_UPLOAD_BYTES * 2])
    filename = (getattr(upload, "name", "") or "project.yaml")[:200]
    if upload is None:
        return filename, None, [_plain("Choose a YAML file to upload.")]
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        message = f"the file is too large: {upload.size:,} bytes, the limit is {MAX_UPLOAD_BYTES:,} bytes"
        return filename, None, [_plain(message)]
    return filename, upload.read(), []


@login_required
@require_POST
def project_upload(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Import a project file in two steps: the upload is validated whole and previewed (what it adds,
    changes and removes; nothing saved), then "Apply import" merges it. On any error nothing is saved."""
    the_project = get_project_for(request, team, project, role=Role.EDITOR)
    filename, text, problems = _uploaded_text(request, the_project)
    preview = result = None
    if text is not None:
        try:
            if request.POST.get("confirm") == "1":
                with transaction.atomic():
                    result = service.import_project(
                        the_project, text, filename, request.user, request.POST.get("client", "")[:40]
                    )
            else:
                preview = service.preview_import(the_project, text, filename)
        except SpecError as exc:
            problems = list(exc.problems)
    if result is not None:
        _record_import(request, the_project, filename, result)
        messages.success(request, _import_summary(filename, result))
        for note in service.secret_notes(the_project, result.spec):
            messages.info(request, note)
        return go_to(request, reverse("designer-project", kwargs={"team": team, "project": project}))
    context = _project_context(
        request,
        the_project,
        upload_problems=problems,
        upload_preview=preview,
        upload_sealed=_seal(the_project, filename, _as_text(text)) if preview else "",
        upload_name=filename,
        upload_notes=service.secret_notes(the_project, preview.spec if preview else None),
    )
    if request.htmx:  # htmx swaps only 2xx responses
        return render(request, "editor/_upload_result.html", context)
    return render(request, "editor/project.html", context, status=400 if problems else 200)


def _as_text(text: bytes | str | None) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text or ""


def _record_import(
    request: HtmxHttpRequest, project: Project, filename: str, result: service.ImportResult
) -> None:
    for version in result.versions:
        if version.pipeline.name in result.created:
            activity.pipeline_created(version.pipeline)
        activity.version_saved(version, "imported")
    activity.record(
        project.team,
        request.user,
        "imported",
        project,
        object_type="project",
        url=_url(project),
        detail=_import_summary(filename, result)[:500],
    )


def _import_summary(filename: str, result: service.ImportResult) -> str:
    parts = []
    if result.created:
        parts.append(f"created {', '.join(result.created)}")
    if result.updated:
        parts.append(f"updated {', '.join(result.updated)}")
    versions = " (a new version each)" if result.versions else ""
    if result.unchanged:
        parts.append(f"unchanged {', '.join(result.unchanged)}")
    return f"Imported {filename}: {'; '.join(parts)}{versions}."


def _plain(message: str) -> object:
    from orchestrator import Problem

    return Problem(message)
