"""Schedules: the form (with the next five fire times and a reading, live), its page, pause/resume."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from designer.editor.models import Project
from designer.teams.models import Role
from designer.triggers import clock, crons, forms, parameters, schedules
from designer.triggers.models import Schedule
from designer.triggers.parameters import InvalidValues
from designer.triggers.views.access import get_schedule_for, pipeline_names
from designer.web import HtmxHttpRequest, can, get_project_for


def _form_context(
    request: HtmxHttpRequest,
    project: Project,
    form: forms.ScheduleForm,
    schedule: Schedule | None,
    values: dict[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    cron = str(form["cron"].value() or "")
    tz = str(form["timezone"].value() or "UTC")
    return {
        "team": project.team,
        "project": project,
        "form": form,
        "schedule": schedule,
        "fields": parameters.form_fields(project, values, errors),
        "preview": preview(cron, tz),
        "can_edit": can(request.user, project.team, Role.EDITOR),
        "can_run": can(request.user, project.team, Role.RUNNER),
        "fires": schedules.last_fires(schedule) if schedule is not None else [],
        "backfill_form": forms.BackfillForm(initial=_backfill_initial()) if schedule is not None else None,
        "backfills": schedule.backfills.all()[:10] if schedule is not None else [],
    }


def _backfill_initial() -> dict[str, Any]:
    today = clock.now().date()
    return {"start": today - dt.timedelta(days=7), "end": today - dt.timedelta(days=1), "concurrency": 2}


def preview(cron: str, tz: str) -> dict[str, Any]:
    """The next five fire times and a reading of ``cron`` in ``tz``, or why it cannot be read."""
    if not cron.strip():
        return {"times": [], "reading": "", "problem": ""}
    try:
        crons.check(cron.strip(), tz)
    except crons.CronProblem as exc:
        return {"times": [], "reading": "", "problem": str(exc)}
    return {
        "times": crons.next_times(cron.strip(), tz, clock.now()),
        "reading": crons.explain(cron.strip()),
        "problem": "",
        "timezone": tz,
    }


def _save(
    request: HtmxHttpRequest, project: Project, schedule: Schedule | None
) -> tuple[Schedule | None, forms.ScheduleForm, dict[str, Any], dict[str, str]]:
    form = forms.ScheduleForm(request.POST, pipelines=pipeline_names(project))
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        values = parameters.values_from_form(project, request.POST)
    except InvalidValues as exc:
        errors = exc.problems
    if not form.is_valid() or errors:
        return None, form, values, errors
    data = form.cleaned_data
    try:
        saved = schedules.save_schedule(
            project,
            schedules.ScheduleData(
                name=data["name"],
                cron=data["cron"],
                timezone=data["timezone"],
                pipeline=data["pipeline"],
                variables=values,
                catch_up=data["catch_up"],
                catch_up_limit=data["catch_up_limit"],
            ),
            request.user,
            schedule,
        )
    except schedules.ScheduleProblem as exc:
        forms.add_problem(form, exc.field, str(exc))
        return None, form, values, errors
    except InvalidValues as exc:
        return None, form, values, exc.problems
    return saved, form, values, errors


@login_required
@require_http_methods(["GET", "POST"])
def schedule_new(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """A new schedule."""
    project_obj = get_project_for(request, team, project, Role.EDITOR)
    if request.method == "POST":
        saved, form, values, errors = _save(request, project_obj, None)
        if saved is not None:
            return redirect(saved.get_absolute_url())
        context = _form_context(request, project_obj, form, None, values, errors)
        return render(request, "triggers/schedule.html", context, status=400)
    form = forms.ScheduleForm(
        initial={"cron": "0 2 * * *", "timezone": "UTC", "catch_up": "latest", "catch_up_limit": 10},
        pipelines=pipeline_names(project_obj),
    )
    return render(request, "triggers/schedule.html", _form_context(request, project_obj, form, None, {}, {}))


@login_required
@require_http_methods(["GET", "POST"])
def schedule_page(request: HtmxHttpRequest, team: str, project: str, schedule_id: int) -> HttpResponse:
    """A schedule: its form (editors change it), its next fire times, what it fired, its backfills."""
    role = Role.EDITOR if request.method == "POST" else Role.VIEWER
    schedule = get_schedule_for(request, team, project, schedule_id, role)
    project_obj = schedule.project
    if request.method == "POST":
        saved, form, values, errors = _save(request, project_obj, schedule)
        if saved is not None:
            return redirect(saved.get_absolute_url())
        schedule.refresh_from_db()
        return render(
            request,
            "triggers/schedule.html",
            _form_context(request, project_obj, form, schedule, values, errors),
            status=400,
        )
    form = forms.ScheduleForm(
        initial={
            "name": schedule.name,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "pipeline": schedule.pipeline.name if schedule.pipeline else "",
            "catch_up": schedule.catch_up,
            "catch_up_limit": schedule.catch_up_limit,
        },
        pipelines=pipeline_names(project_obj),
    )
    context = _form_context(request, project_obj, form, schedule, dict(schedule.variables), {})
    return render(request, "triggers/schedule.html", context)


@login_required
@require_GET
def schedule_preview(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """The next five fire times and the reading of the cron being typed (htmx, as the form changes)."""
    project_obj = get_project_for(request, team, project)
    context = {
        "project": project_obj,
        "preview": preview(request.GET.get("cron", ""), request.GET.get("timezone", "UTC")),
    }
    return render(request, "triggers/schedule.html#preview", context)


@login_required
@require_POST
def schedule_pause(request: HtmxHttpRequest, team: str, project: str, schedule_id: int) -> HttpResponse:
    """Pause a running schedule, or resume a paused one (``paused=1|0``)."""
    schedule = get_schedule_for(request, team, project, schedule_id, Role.EDITOR)
    wanted = request.POST.get("paused", "1" if not schedule.paused else "0") == "1"
    if wanted != schedule.paused:
        schedules.set_paused(schedule, wanted, request.user)
    if request.POST.get("back") == "list":
        return redirect(reverse("designer-project-triggers", kwargs={"team": team, "project": project}))
    return redirect(schedule.get_absolute_url())


@login_required
@require_POST
def schedule_delete(request: HtmxHttpRequest, team: str, project: str, schedule_id: int) -> HttpResponse:
    schedule = get_schedule_for(request, team, project, schedule_id, Role.EDITOR)
    schedules.delete_schedule(schedule, request.user)
    return redirect(reverse("designer-project-triggers", kwargs={"team": team, "project": project}))
