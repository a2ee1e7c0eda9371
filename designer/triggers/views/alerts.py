"""Alert destinations: add one, send it a test message, delete it (owners: they choose where runs'
details go, and the URL they give often holds a credential)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from designer.teams import activity
from designer.teams.models import Role
from designer.triggers import alerts, delivery, forms
from designer.triggers.models import DeliveryState
from designer.triggers.views.access import get_destination_for
from designer.triggers.views.pages import triggers_context
from designer.web import HtmxHttpRequest, get_project_for


def _back(team: str, project: str) -> str:
    return reverse("designer-project-triggers", kwargs={"team": team, "project": project}) + "#alerts"


@login_required
@require_POST
def alert_create(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Add where the project's alerts go."""
    project_obj = get_project_for(request, team, project, Role.OWNER)
    form = forms.AlertForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            alerts.add_destination(
                project_obj,
                name=data["name"],
                kind=data["kind"],
                target=data["target"],
                on_failure=data["on_failure"],
                on_success=data["on_success"],
                on_recovery=data["on_recovery"],
                user=request.user,
            )
        except alerts.AlertProblem as exc:
            forms.add_problem(form, exc.field, str(exc))
        else:
            return redirect(_back(team, project))
    shown = request.POST.copy()
    shown["target"] = ""  # a URL with a credential is not sent back to the browser
    form.data = shown
    context = triggers_context(request, project_obj, alert_form=form)
    return render(request, "triggers/project.html", context, status=400)


@login_required
@require_POST
def alert_test(request: HtmxHttpRequest, team: str, project: str, destination_id: int) -> HttpResponse:
    """Send a test message now and say how it went."""
    destination = get_destination_for(request, team, project, destination_id)
    sent = delivery.send_test(destination)
    activity.trigger_changed(destination.team, request.user, "tested", destination, sent.state)
    if sent.state == DeliveryState.SENT:
        messages.success(request, f"Test alert sent to {destination.name}: {sent.log[-1]['detail']}.")
    else:
        messages.error(request, f"Test alert to {destination.name} failed: {sent.last_error}")
    return redirect(_back(team, project))


@login_required
@require_POST
def alert_delete(request: HtmxHttpRequest, team: str, project: str, destination_id: int) -> HttpResponse:
    destination = get_destination_for(request, team, project, destination_id)
    alerts.delete_destination(destination, request.user)
    return redirect(_back(team, project))
