"""Load-and-authorise helpers of the triggers views (404 to anyone not in the team, or below the role)."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from designer.editor.models import Project
from designer.teams.models import Role
from designer.triggers.models import AlertDestination, Backfill, Schedule, Webhook
from designer.web import get_project_for


def get_schedule_for(
    request: HttpRequest, team: str, project: str, schedule_id: int, role: str = Role.VIEWER
) -> Schedule:
    """The project's schedule ``schedule_id``, authorised through its team."""
    project_obj = get_project_for(request, team, project, role)
    schedule = (
        Schedule.objects.filter(project=project_obj, pk=schedule_id)
        .select_related("project__team", "pipeline")
        .first()
    )
    if schedule is None:
        raise Http404("No such schedule")
    return schedule


def get_backfill_for(
    request: HttpRequest, team: str, project: str, backfill_id: int, role: str = Role.VIEWER
) -> Backfill:
    project_obj = get_project_for(request, team, project, role)
    backfill = (
        Backfill.objects.filter(project=project_obj, pk=backfill_id)
        .select_related("project__team", "schedule")
        .first()
    )
    if backfill is None:
        raise Http404("No such backfill")
    return backfill


def get_webhook_for(
    request: HttpRequest, team: str, project: str, webhook_id: int, role: str = Role.EDITOR
) -> Webhook:
    project_obj = get_project_for(request, team, project, role)
    webhook = (
        Webhook.objects.filter(project=project_obj, pk=webhook_id).select_related("project__team").first()
    )
    if webhook is None:
        raise Http404("No such webhook")
    return webhook


def get_destination_for(
    request: HttpRequest, team: str, project: str, destination_id: int, role: str = Role.OWNER
) -> AlertDestination:
    project_obj = get_project_for(request, team, project, role)
    destination = (
        AlertDestination.objects.filter(project=project_obj, pk=destination_id)
        .select_related("project__team")
        .first()
    )
    if destination is None:
        raise Http404("No such alert destination")
    return destination


def pipeline_names(project: Project) -> list[str]:
    return list(project.pipelines.order_by("name").values_list("name", flat=True))
