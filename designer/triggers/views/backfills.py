"""Backfills: start one for a schedule, its live grid of dates, retry the failed ones."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from designer.teams.models import Role
from designer.triggers import backfills, forms
from designer.triggers.views.access import get_backfill_for, get_schedule_for
from designer.web import HtmxHttpRequest, can


@login_required
@require_POST
def backfill_create(request: HtmxHttpRequest, team: str, project: str, schedule_id: int) -> HttpResponse:
    """Run the schedule over a range of dates, ``concurrency`` at a time."""
    schedule = get_schedule_for(request, team, project, schedule_id, Role.RUNNER)
    form = forms.BackfillForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            backfill = backfills.start_backfill(
                schedule, data["start"], data["end"], data["concurrency"], request.user
            )
        except backfills.BackfillProblem as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(backfill.get_absolute_url())
    context = {
        "team": schedule.team,
        "project": schedule.project,
        "schedule": schedule,
        "backfill_form": form,
    }
    return render(request, "triggers/backfill_refused.html", context, status=400)


@login_required
@require_GET
def backfill_page(request: HtmxHttpRequest, team: str, project: str, backfill_id: int) -> HttpResponse:
    """The backfill's grid of dates, live (the grid reloads itself until every date is done)."""
    backfill = get_backfill_for(request, team, project, backfill_id)
    context = {
        "team": backfill.team,
        "project": backfill.project,
        "backfill": backfill,
        "grid": backfills.grid(backfill),
        "counts": backfills.counts(backfill),
        "can_run": can(request.user, backfill.team, Role.RUNNER),
    }
    template = "triggers/backfill.html#grid" if request.htmx else "triggers/backfill.html"
    return render(request, template, context)


@login_required
@require_POST
def backfill_retry(request: HtmxHttpRequest, team: str, project: str, backfill_id: int) -> HttpResponse:
    """Start the failed, cancelled and refused dates again, together."""
    backfill = get_backfill_for(request, team, project, backfill_id, Role.RUNNER)
    backfills.retry_failed(backfill, request.user)
    return redirect(backfill.get_absolute_url())
