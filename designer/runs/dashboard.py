"""What the run pages show: a run's layout, the dashboard's filters, rows and per-pipeline duration history,
and the latest run states the editor shows on its step cards."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from designer.editor.models import Pipeline, Project
from designer.runs.models import FINISHED_STATES, RUN_STATES, PipelineRun, Run, RunKind, StepRun
from designer.teams.models import Team
from orchestrator import PHASE_ORDER, Status

STATES = [s.value for s in RUN_STATES]
#: the dashboard's time filter: key -> (label, age)
PERIODS: dict[str, tuple[str, dt.timedelta | None]] = {
    "24h": ("Last 24 hours", dt.timedelta(hours=24)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
    "all": ("Any time", None),
}
LIST_LIMIT = 100
HISTORY = 20
CHART_W, CHART_H = 160, 32


def run_layout(run: Run) -> list[dict[str, Any]]:
    """Each pipeline of the run with its phases (editor order) and their StepRun rows."""
    pipeline_runs = run.pipeline_runs.prefetch_related(
        Prefetch("step_runs", queryset=StepRun.objects.order_by("position"))
    ).order_by("position", "name")
    layout = []
    for pipeline_run in pipeline_runs:
        by_phase: dict[str, list[StepRun]] = defaultdict(list)
        for step in pipeline_run.step_runs.all():
            by_phase[step.phase].append(step)
        phases = [{"name": p.value, "steps": by_phase[p.value]} for p in PHASE_ORDER if by_phase.get(p.value)]
        layout.append({"run": pipeline_run, "phases": phases})
    return layout


@dataclass(frozen=True)
class RunFilters:
    project: str = ""
    pipeline: str = ""
    state: str = ""
    period: str = "7d"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RunFilters:
        """Filters from the query string; unknown values are ignored."""
        state = query.get("state", "")
        period = query.get("period", "7d")
        return cls(
            project=query.get("project", "").strip(),
            pipeline=query.get("pipeline", "").strip(),
            state=state if state in STATES else "",
            period=period if period in PERIODS else "7d",
        )

    def since(self) -> dt.datetime | None:
        age = PERIODS[self.period][1]
        return timezone.now() - age if age else None


def _filter(runs: QuerySet[Run], filters: RunFilters) -> QuerySet[Run]:
    if filters.project:
        runs = runs.filter(project__slug=filters.project)
    if filters.state:
        runs = runs.filter(state=filters.state)
    if filters.pipeline:
        runs = runs.filter(pipeline_runs__name=filters.pipeline)
    if since := filters.since():
        runs = runs.filter(created_at__gte=since)
    return runs


def filtered_runs(team: Team, filters: RunFilters) -> list[Run]:
    """The newest runs of the team matching ``filters``."""
    runs = _filter(Run.objects.listed().filter(team=team), filters).select_related("project", "created_by")
    return list(runs.distinct().order_by("-created_at", "-pk")[:LIST_LIMIT])


def duration_charts(team: Team, filters: RunFilters) -> list[dict[str, Any]]:
    """Per pipeline: the durations of its last runs as SVG bars (oldest left), newest value and max."""
    rows = (
        PipelineRun.objects.filter(run__team=team, duration__isnull=False)
        .filter(state__in=FINISHED_STATES)
        .exclude(run__kind=RunKind.PREVIEW)
        .select_related("run__project")
        .order_by("-run__created_at", "-pk")
    )
    if filters.project:
        rows = rows.filter(run__project__slug=filters.project)
    if filters.pipeline:
        rows = rows.filter(name=filters.pipeline)
    series: dict[tuple[str, str], list[PipelineRun]] = defaultdict(list)
    for row in rows[:2000]:
        key = (row.run.project.name, row.name)
        if len(series[key]) < HISTORY:
            series[key].append(row)
    charts = []
    for (project, name), items in sorted(series.items()):
        items.reverse()
        top = max(r.duration or 0 for r in items) or 1.0
        width = CHART_W / HISTORY
        bars = []
        for i, r in enumerate(items):
            height = max(1.0, (r.duration or 0) / top * (CHART_H - 2))
            bars.append(
                {
                    "x": round(i * width, 1),
                    "y": round(CHART_H - height, 1),
                    "w": round(width - 1, 1),
                    "h": round(height, 1),
                    "state": r.state,
                    "title": f"run {r.run_id}: {r.duration:.2f} s ({r.state})",
                }
            )
        charts.append(
            {"project": project, "pipeline": name, "bars": bars, "last": items[-1].duration, "max": top}
        )
    return charts


def runnable_projects(team: Team) -> list[Project]:
    """Projects of the team, for the dashboard's Run form."""
    return list(team.projects.prefetch_related("pipelines"))


def run_row_html(run: Run) -> str:
    """The dashboard's table row of ``run`` (``run.project`` loaded): the page renders its rows with this
    partial, and the team's runs websocket pushes it when the run is queued or changes state."""
    return render_to_string("runs/_run_row.html", {"r": run})


#: how many of a project's unfinished runs the editor looks through for one that includes its pipeline
ACTIVE_SCAN = 20


def active_run_id(pipeline: Pipeline) -> int | None:
    """The newest queued or running run that includes ``pipeline`` (the editor follows it live)."""
    runs = (
        Run.objects.listed()
        .filter(project_id=pipeline.project_id, state__in=(Status.QUEUED, Status.RUNNING))
        .order_by("-created_at", "-pk")
    )
    for run in runs.only("pk", "pipelines", "spec")[:ACTIVE_SCAN]:
        if pipeline.name in run.pipeline_names:
            return int(run.pk)
    return None


def latest_step_states(pipeline: Pipeline) -> dict[tuple[str, str], dict[str, Any]]:
    """(phase, step id) -> the step's state, duration and error in the newest run that included the
    pipeline (the editor's step cards show it); empty when it never ran."""
    latest = (
        StepRun.objects.filter(
            pipeline_run__run__project_id=pipeline.project_id, pipeline_run__name=pipeline.name
        )
        .exclude(pipeline_run__run__kind=RunKind.PREVIEW)
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
