"""Step outputs in the pages: a step's output table (the run page, the editor's preview), Resume, and the
editor's "Preview" and "Run from here"."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from designer.runs import outputs, resume
from designer.runs.launch import RunRefused
from designer.runs.models import Run, StepOutput, StepRun
from designer.runs.views import _get_run_for, _refused
from designer.teams import activity
from designer.teams.models import Role
from designer.web import HtmxHttpRequest, get_pipeline_for, go_to
from orchestrator import Status, shown_step

#: how often a page asks again while the step's output is not there yet (milliseconds)
POLL_MS = 250


def _table(output: StepOutput | None) -> dict[str, Any] | None:
    """What ``runs/_output_table.html`` shows of one output: columns with types and nulls, the rows."""
    if output is None:
        return None
    nulls = output.nulls or {}
    columns = [{"name": n, "type": t, "nulls": nulls.get(n)} for n, t in output.columns]
    return {"output": output, "columns": columns, "rows": output.sample}


def output_context(run: Run, pipeline: str, key: str) -> dict[str, Any]:
    """Everything the output panel of step ``key`` shows: its table, its state and error, and, when it
    failed, the table it read."""
    phase, _, step_id = key.partition(".")
    shown = shown_step(run.spec or {}, pipeline, key) if run.is_preview else key
    step_run = (
        StepRun.objects.filter(
            pipeline_run__run=run, pipeline_run__name=pipeline, phase=phase, step_id=step_id
        )
        .only("state", "error")
        .first()
    )
    failed = step_run is not None and step_run.state == Status.FAILED
    inputs = [_table(o) for o in outputs.input_outputs(run, pipeline, key)] if failed else []
    output = outputs.step_output(run, pipeline, shown)
    return {
        "run": run,
        "pipeline": pipeline,
        "key": key,
        "shown": shown,
        "step_id": step_id,
        "phase": phase,
        "state": step_run.state if step_run is not None else "",
        "error": (step_run.error if step_run is not None else "") or (run.error if run.is_preview else ""),
        "table": _table(output),
        "inputs": inputs,
        # still coming: the run goes on, or its output is not stored yet
        "waiting": output is None and not run.finished,
        "poll_ms": POLL_MS,
    }


@login_required
@require_GET
def run_output(request: HttpRequest, run_id: int) -> HttpResponse:
    """One step's output in a run (``?pipeline=...&step=phase.step_id``): its sample as a table, its
    schema and counts; a failed step's error beside the table it read."""
    run = _get_run_for(request, run_id)
    pipeline = request.GET.get("pipeline", "")
    key = request.GET.get("step", "")
    return render(request, "runs/_step_output.html", output_context(run, pipeline, key))


@login_required
@require_POST
def run_resume(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    """Resume a failed run from where it stopped, reusing its kept outputs."""
    run = _get_run_for(request, run_id, Role.RUNNER)
    try:
        new = resume.resume(run, request.user)
    except RunRefused as exc:
        return _refused(request, str(exc), reverse("designer-run", args=[run.pk]))
    activity.run_started(new)
    return go_to(request, reverse("designer-run", args=[new.pk]))


def _posted_step(request: HttpRequest) -> str:
    """The step key (``phase.step_id``) a form of the editor's inspector posts."""
    return f"{request.POST.get('phase', '')}.{request.POST.get('id', '')}"


@login_required
@require_POST
def run_from_step(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """ "Run from here": the pipeline from one step on, reusing its latest run's kept outputs."""
    obj = get_pipeline_for(request, team, project, pipeline, role=Role.RUNNER)
    try:
        new = resume.run_from_step(obj, request.user, _posted_step(request))
    except RunRefused as exc:
        return render(request, "runs/_refused.html", {"reason": str(exc)})
    activity.run_started(new)
    return go_to(request, reverse("designer-run", args=[new.pk]))


@login_required
@require_POST
def step_preview(request: HtmxHttpRequest, team: str, project: str, pipeline: str) -> HttpResponse:
    """Preview one step of the draft: queue a preview run; the answer polls for its output."""
    obj = get_pipeline_for(request, team, project, pipeline, role=Role.EDITOR)
    key = _posted_step(request)
    try:
        run = resume.start_preview(obj, request.user, key)
    except RunRefused as exc:
        return render(request, "runs/_refused.html", {"reason": str(exc)})
    return render(request, "runs/_step_output.html", output_context(run, obj.name, key))
