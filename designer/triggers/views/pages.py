"""The project's triggers page (parameters, schedules, webhooks, alerts, backfills) and the team's list of
schedules (the runs dashboard shows it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from designer.editor.models import Project
from designer.teams.models import Role
from designer.triggers import forms, schedules
from designer.triggers.models import AlertDestination, Backfill, RunParameter, Webhook
from designer.triggers.views.access import pipeline_names
from designer.web import HtmxHttpRequest, can, get_project_for, get_team_for


def triggers_context(request: HtmxHttpRequest, project: Project, **extra: Any) -> dict[str, Any]:
    """What the triggers page shows; ``extra`` replaces a form (with its errors) or adds to it."""
    team = project.team
    pipelines = pipeline_names(project)
    webhooks = list(Webhook.objects.filter(project=project).select_related("pipeline"))
    for webhook in webhooks:
        webhook.recent_calls = list(webhook.calls.select_related("run")[:5])  # type: ignore[attr-defined]
    destinations = list(AlertDestination.objects.filter(project=project))
    for destination in destinations:
        destination.recent = list(destination.deliveries.exclude(state="none")[:5])  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "team": team,
        "project": project,
        "can_run": can(request.user, team, Role.RUNNER),
        "can_edit": can(request.user, team, Role.EDITOR),
        "can_own": can(request.user, team, Role.OWNER),
        "parameters": RunParameter.objects.filter(project=project),
        "schedules": schedules.project_schedules(project),
        "webhooks": webhooks,
        "destinations": destinations,
        "backfills": Backfill.objects.filter(project=project).select_related("schedule")[:10],
        "parameter_form": forms.ParameterForm(),
        "webhook_form": forms.WebhookForm(pipelines=pipelines),
        "alert_form": forms.AlertForm(),
    }
    context.update(extra)
    return context


@login_required
@require_GET
def triggers_page(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Everything that starts the project's runs or tells about them."""
    project_obj = get_project_for(request, team, project)
    return render(request, "triggers/project.html", triggers_context(request, project_obj))


@login_required
@require_GET
def team_schedules(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """The team's schedules with their next fire time and last run (the dashboard loads the list)."""
    team_obj = get_team_for(request, team)
    context = {"team": team_obj, "rows": schedules.team_schedules(team_obj)}
    template = (
        "triggers/team_schedules.html#schedule-list" if request.htmx else "triggers/team_schedules.html"
    )
    return render(request, template, context)
