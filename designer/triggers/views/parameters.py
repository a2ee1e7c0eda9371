"""Declaring a project's run parameters."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from designer.teams import activity
from designer.teams.models import Role
from designer.triggers import forms, parameters
from designer.triggers.views.pages import triggers_context
from designer.web import HtmxHttpRequest, get_project_for
from orchestrator import ParameterError


@login_required
@require_POST
def parameter_set(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """Declare (or redeclare) one run parameter."""
    project_obj = get_project_for(request, team, project, Role.EDITOR)
    form = forms.ParameterForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            row = parameters.set_parameter(
                project_obj,
                data["name"],
                data["type"],
                data["default"],
                data["description"],
                data["required"],
                form.choice_list(),
            )
        except ParameterError as exc:
            form.add_error(None, "; ".join(exc.problems.values()))
        else:
            activity.record(
                project_obj.team,
                request.user,
                "set_parameter",
                object_type="parameter",
                object_name=f"{project_obj.name} / {row.name}",
                detail=row.type,
            )
            return redirect(
                reverse("designer-project-triggers", kwargs={"team": team, "project": project})
                + "#parameters"
            )
    context = triggers_context(request, project_obj, parameter_form=form)
    return render(request, "triggers/project.html", context, status=400)


@login_required
@require_POST
def parameter_delete(request: HtmxHttpRequest, team: str, project: str, name: str) -> HttpResponse:
    project_obj = get_project_for(request, team, project, Role.EDITOR)
    if parameters.delete_parameter(project_obj, name):
        activity.record(
            project_obj.team,
            request.user,
            "deleted_parameter",
            object_type="parameter",
            object_name=f"{project_obj.name} / {name}",
        )
    return redirect(
        reverse("designer-project-triggers", kwargs={"team": team, "project": project}) + "#parameters"
    )
