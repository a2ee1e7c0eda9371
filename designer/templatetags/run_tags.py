"""Template helpers for runs: each step's state in the latest run of its pipeline (for the editor)."""

from __future__ import annotations

from typing import Any

from django import template

from designer.runs.models import StepRun
from orchestrator import Status

register = template.Library()


def _latest_states(pipeline: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(phase, step id) -> state of the step in the newest run that included the pipeline."""
    latest = (
        StepRun.objects.filter(
            pipeline_run__run__project_id=pipeline.project_id, pipeline_run__name=pipeline.name
        )
        .order_by("-pipeline_run__run__created_at", "-pipeline_run__run_id")
        .values_list("pipeline_run__run_id", flat=True)
        .first()
    )
    if latest is None:
        return {}
    rows = StepRun.objects.filter(pipeline_run__run_id=latest, pipeline_run__name=pipeline.name)
    return {
        (r.phase, r.step_id): {"state": r.state, "duration": r.duration, "error": r.error, "run_id": latest}
        for r in rows
    }


@register.simple_tag(takes_context=True)
def latest_step_state(context: Any, pipeline: Any, step: Any) -> dict[str, Any] | None:
    """The step's state in the pipeline's latest run (queried once per pipeline per render)."""
    if pipeline is None or step is None:
        return None
    # On the request, so every included step card of one page shares it.
    holder = context.get("request")
    if holder is not None:
        cache = holder.__dict__.setdefault("_pipedeck_step_states", {})
    else:
        cache = context.render_context.setdefault("run_tags_states", {})
    if pipeline.pk not in cache:
        cache[pipeline.pk] = _latest_states(pipeline)
    phase = getattr(step, "phase", None) or (step.get("phase") if isinstance(step, dict) else None)
    step_id = getattr(step, "id", None) or (step.get("id") if isinstance(step, dict) else None)
    state: dict[str, Any] | None = cache[pipeline.pk].get((phase, step_id))
    return state


@register.simple_tag
def active_run_id(pipeline: Any) -> int | None:
    """The newest queued or running run that includes ``pipeline`` (the editor follows it live)."""
    from designer.runs.models import Run

    runs = Run.objects.filter(
        project_id=pipeline.project_id, state__in=(Status.QUEUED, Status.RUNNING)
    ).order_by("-created_at", "-pk")
    for run in runs.only("pk", "pipelines", "spec")[:20]:
        if pipeline.name in run.pipeline_names:
            return int(run.pk)
    return None


@register.simple_tag(takes_context=True)
def can_run(context: Any, team: Any) -> bool:
    """True when the signed-in user may start and cancel runs in ``team`` (role runner or above)."""
    from designer.web import can

    request = context.get("request")
    return team is not None and request is not None and can(request.user, team, "runner")


@register.inclusion_tag("runs/_latest_runs_link.html", takes_context=True)
def runs_nav_link(context: Any) -> dict[str, Any]:
    """The nav's "Runs" link for the team in the URL (or the user's first team)."""
    from designer.teams.models import Team

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"team": None}
    match = getattr(request, "resolver_match", None)
    slug = (match.kwargs.get("team") if match else None) or ""
    teams = Team.objects.filter(memberships__user=user)
    team = teams.filter(slug=slug).first() if slug else None
    return {"team": team or teams.order_by("name").first()}
