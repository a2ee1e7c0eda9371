"""Run pages: start, detail (live), stored events as JSON, cancel / re-run / retry, the team dashboard."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from designer import limits
from designer.editor.models import Project
from designer.runs import dashboard, launch
from designer.runs.launch import RunRefused
from designer.runs.models import Run, RunEvent
from designer.teams import activity
from designer.teams.models import Role
from designer.teams.variables import parse_value
from designer.web import HtmxHttpRequest, can, get_project_for, get_team_for, go_to, next_url

EVENTS_PAGE = 1000


def _get_run_for(request: HttpRequest, run_id: int, role: str = Role.VIEWER) -> Run:
    """The run, if the user holds ``role`` in its team (Http404 otherwise)."""
    run = Run.objects.select_related("team", "project", "created_by").filter(pk=run_id).first()
    if run is None or not can(request.user, run.team, role):
        raise Http404("No such run")
    return run


def parse_overrides(text: str) -> dict[str, Any]:
    """``KEY=VALUE`` lines (values typed like the CLI's ``--var``); raises RunRefused on a bad line."""
    if len(text) > limits.RUN_VARIABLES:
        raise RunRefused(
            f"Variable overrides may hold up to {limits.RUN_VARIABLES:,} characters (got {len(text):,})."
        )
    overrides: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise RunRefused(f"Variable override on line {number} must look like NAME=value, got {line!r}.")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def _refused(request: HtmxHttpRequest, reason: str, back: str) -> HttpResponse:
    if request.htmx:
        response = render(request, "runs/_refused.html", {"reason": reason})
        return reswap(retarget(response, "#run-message"), "innerHTML")
    messages.error(request, reason)
    return redirect(back)


def upstream_choice(values: list[str]) -> bool | None:
    """The Run form's "with upstream" checkbox (a hidden "0" before it): checked, unchecked, or not in
    the form (None: the launcher decides)."""
    return True if "1" in values else False if "0" in values else None


def _start(request: HtmxHttpRequest, project: Project, back: str) -> HttpResponse:
    from designer.triggers.parameters import InvalidValues  # triggers builds on runs

    pipeline = request.POST.get("pipeline", "").strip()
    draft = pipeline if request.POST.get("draft") == "1" and pipeline else None
    overrides: dict[str, Any] = {}
    try:
        if draft and not can(request.user, project.team, Role.EDITOR):
            raise RunRefused("Only editors of this team can run a draft: run the saved version instead.")
        overrides = parse_overrides(request.POST.get("variables", ""))
        run = launch.start_run(
            project,
            request.user,
            [pipeline] if pipeline else None,
            overrides,
            upstream=upstream_choice(request.POST.getlist("upstream")),
            draft=draft,
        )
    except InvalidValues as exc:
        if overrides or draft:
            return _refused(request, str(exc), back)
        # the project's run parameters need values: its Run form asks for them
        form = reverse("designer-run-form", kwargs={"team": project.team.slug, "project": project.slug})
        return go_to(request, f"{form}?{urlencode({'pipeline': pipeline})}" if pipeline else form)
    except RunRefused as exc:
        return _refused(request, str(exc), back)
    activity.run_started(run)
    return go_to(request, reverse("designer-run", args=[run.pk]))


@login_required
@require_POST
def run_start(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Queue a run of the project, or of the pipeline named in the form, with optional variable overrides."""
    project_obj = get_project_for(request, team, project, Role.RUNNER)
    back = next_url(request, reverse("designer-project", kwargs={"team": team, "project": project}))
    return _start(request, project_obj, back)


@login_required
@require_POST
def team_run_start(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """The dashboard's Run form: the project comes from the form."""
    project_obj = get_project_for(request, team, request.POST.get("project", ""), Role.RUNNER)
    return _start(request, project_obj, reverse("designer-runs", kwargs={"team": team}))


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """The live run page: pipelines, phases and steps as boxes, log pane, timeline."""
    run = _get_run_for(request, run_id)
    context = {
        "run": run,
        "team": run.team,
        "project": run.project,
        "pipelines": dashboard.run_layout(run),
        "can_run": can(request.user, run.team, Role.RUNNER),
    }
    return render(request, "runs/detail.html", context)


@login_required
@require_GET
def run_events(request: HttpRequest, run_id: int) -> JsonResponse:
    """Stored events after ``?after=N`` (the browser re-syncs with this when it sees a gap)."""
    run = _get_run_for(request, run_id)
    raw = request.GET.get("after", "0")
    after = int(raw) if raw.isdigit() else 0
    rows = list(RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:EVENTS_PAGE])
    return JsonResponse(
        {
            "run": run.pk,
            "state": run.state,
            "last_seq": run.last_seq,
            "more": len(rows) == EVENTS_PAGE,
            "events": [row.as_message() for row in rows],
        }
    )


@login_required
@require_POST
def run_cancel(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """Cancel a queued or running run."""
    run = _get_run_for(request, run_id, Role.RUNNER)
    if not launch.cancel(run):
        return _refused(request, "This run has already finished.", reverse("designer-run", args=[run.pk]))
    activity.record(
        run.team,
        request.user,
        "cancelled",
        object_type="run",
        object_name=f"run #{run.pk}",
        url=reverse("designer-run", args=[run.pk]),
    )
    if request.htmx:
        return render(request, "runs/_refused.html", {"reason": "Cancelling…", "level": "info"})
    return redirect("designer-run", run.pk)


@login_required
@require_POST
def run_rerun(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """A new run of the same snapshot (``only_failed=1``: of the failed and skipped pipelines only)."""
    run = _get_run_for(request, run_id, Role.RUNNER)
    try:
        new = launch.rerun(run, request.user, only_failed=request.POST.get("only_failed") == "1")
    except RunRefused as exc:
        return _refused(request, str(exc), reverse("designer-run", args=[run.pk]))
    activity.run_started(new)
    return go_to(request, reverse("designer-run", args=[new.pk]))


@login_required
@require_GET
def runs_dashboard(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """The team's runs, live, with filters and per-pipeline duration history."""
    team_obj = get_team_for(request, team)
    filters = dashboard.RunFilters.from_query(request.GET)
    context = {
        "team": team_obj,
        "filters": filters,
        "runs": dashboard.filtered_runs(team_obj, filters),
        "projects": team_obj.projects.all(),
        "states": dashboard.STATES,
        "periods": dashboard.PERIODS,
        "charts": dashboard.duration_charts(team_obj, filters),
        "runnable": dashboard.runnable_projects(team_obj) if can(request.user, team_obj, Role.RUNNER) else [],
    }
    template = "runs/dashboard.html#run-list" if request.htmx else "runs/dashboard.html"
    return render(request, template, context)
