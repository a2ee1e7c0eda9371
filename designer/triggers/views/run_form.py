"""The Run form generated from the project's run parameters (the step arguments' schema-form code)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from designer.runs.launch import RunRefused
from designer.teams import activity
from designer.teams.models import Role
from designer.triggers import parameters, starting
from designer.triggers.parameters import InvalidValues
from designer.triggers.views.access import pipeline_names
from designer.web import HtmxHttpRequest, get_project_for, go_to


@login_required
@require_http_methods(["GET", "POST"])
def run_form(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """GET: the form (each parameter with its default); POST: check the values and start the run."""
    project_obj = get_project_for(request, team, project, Role.RUNNER)
    declared = parameters.declared(project_obj)
    pipelines = pipeline_names(project_obj)
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    problem = ""
    chosen = request.POST.get("pipeline", "") if request.method == "POST" else request.GET.get("pipeline", "")
    if request.method == "POST":
        try:
            values = parameters.values_from_form(project_obj, request.POST, declared)
            pipeline = project_obj.pipelines.filter(name=chosen).first() if chosen else None
            if chosen and pipeline is None:
                raise RunRefused(f"No pipeline named {chosen} in this project.")
            run = starting.start(project_obj, pipeline, values, user=request.user)
        except InvalidValues as exc:
            errors, problem = exc.problems, str(exc)
        except RunRefused as exc:
            problem = str(exc)
        else:
            activity.run_started(run)
            return go_to(request, reverse("designer-run", args=[run.pk]))
    context = {
        "team": project_obj.team,
        "project": project_obj,
        "fields": parameters.form_fields(project_obj, values, errors, declared),
        "pipelines": pipelines,
        "chosen": chosen,
        "problem": problem,
    }
    return render(request, "triggers/run_form.html", context, status=400 if problem else 200)
