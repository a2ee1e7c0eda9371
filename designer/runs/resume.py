"""Runs that start from kept outputs, and previews: a failed run's Resume, the editor's "Run from here" and
"Preview". Each is a queued ``Run`` (the same queue, child process and isolation as any run); the engine
decides what may be reused (``orchestrator.plan_resume``), checked here first so a refusal is shown at
once, and again by the run's process.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from designer.editor.models import Pipeline
from designer.runs import launch
from designer.runs.launch import RunRefused
from designer.runs.models import Run, RunKind
from designer.runs.outputs import latest_kept_run, outputs_path
from designer.teams.variables import effective_variables
from orchestrator import (
    PreviewRefused,
    ProjectSpec,
    ResumeFrom,
    ResumeRefused,
    Status,
    plan_resume,
    preview_project,
)

#: the states of a step that a resumed run need not run again
DONE = (Status.SUCCEEDED, Status.REUSED)


def resume_points(run: Run) -> dict[str, str]:
    """``{pipeline: step key}``: where each pipeline of ``run`` that failed or was cancelled resumes (its
    first step, in run order, that did not succeed)."""
    points: dict[str, str] = {}
    for pipeline_run in run.pipeline_runs.filter(state__in=[Status.FAILED, Status.CANCELLED]):
        step = pipeline_run.step_runs.exclude(state__in=DONE).order_by("position").first()
        if step is not None:
            points[pipeline_run.name] = f"{step.phase}.{step.step_id}"
    return points


def _check(spec: dict[str, Any], source: Run, steps: dict[str, str], names: list[str]) -> None:
    """RunRefused with the engine's reason unless the pipelines can start at ``steps`` from ``source``'s
    kept outputs."""
    if not source.outputs_kept:
        raise RunRefused(
            f"Run #{source.pk} has no kept outputs any more (they expire, or its project does not keep "
            "them): run it again from the start."
        )
    try:
        plan_resume(ProjectSpec.model_validate(spec), ResumeFrom(outputs_path(source), steps), only=names)
    except ResumeRefused as exc:
        raise RunRefused(f"Cannot resume from run #{source.pk}: {exc}.") from None


def resume(run: Run, user: Any) -> Run:
    """Resume: a new run of the same snapshot (versions, spec, variables) as the failed or cancelled
    ``run``, of its pipelines that did not succeed, each starting at the step where it stopped and reusing
    ``run``'s kept outputs of the steps before it. Raises RunRefused with the reason."""
    if run.is_preview or run.state not in (Status.FAILED, Status.CANCELLED):
        raise RunRefused("Only a failed or cancelled run can resume.")
    names = sorted(run.pipeline_runs.exclude(state=Status.SUCCEEDED).values_list("name", flat=True))
    steps = resume_points(run)
    if not steps:
        raise RunRefused("Nothing to resume: no pipeline of this run stopped at a step.")
    spec = copy.deepcopy(run.spec)
    spec["pipelines"] = {n: spec["pipelines"][n] for n in spec["pipelines"] if n in names}
    for pipeline in spec["pipelines"].values():
        pipeline["needs"] = [n for n in pipeline.get("needs", []) if n in names]
    _check(spec, run, steps, names)
    return launch.enqueue(
        run.project,
        spec,
        {n: v for n, v in run.versions.items() if n in names},
        names,
        run.variables,
        user,
        rerun_of=run,
        logical_datetime=run.logical_datetime,
        extra={"resumed_from": run, "resume_steps": steps},
    )


def run_from_step(pipeline: Pipeline, user: Any, key: str) -> Run:
    """ "Run from here" in the editor: a run of the pipeline's latest saved version that starts at step
    ``key``, reusing the kept outputs of the newest run of it that still has them (with that run's
    parameter values and date). Raises RunRefused with the reason."""
    source = latest_kept_run(pipeline.project_id, pipeline.name)
    if source is None:
        raise RunRefused(
            f"No run of {pipeline.name} has kept outputs to start from: run it once from the start "
            "(its project keeps runs' outputs unless Project settings say otherwise)."
        )
    model, versions = launch.snapshot(pipeline.project, [pipeline.name], source.variables, upstream=False)
    spec = model.model_dump(mode="json")
    steps = {pipeline.name: key}
    _check(spec, source, steps, [pipeline.name])
    return launch.enqueue(
        pipeline.project,
        spec,
        versions,
        [pipeline.name],
        source.variables,
        user,
        logical_datetime=source.logical_datetime,
        extra={"resumed_from": source, "resume_steps": steps},
    )


def start_preview(pipeline: Pipeline, user: Any, key: str) -> Run:
    """Preview step ``key`` of the pipeline's draft: a "preview" run of the steps its table comes through,
    on limited input, that loads nothing and is not listed with the runs. Raises RunRefused."""
    from designer.triggers.parameters import reference_values  # triggers builds on runs

    project = pipeline.project
    variables = effective_variables(project, reference_values(project))
    draft = {"variables": variables, "concurrency": 1, "pipelines": {pipeline.name: pipeline.spec}}
    try:
        spec = preview_project(draft, pipeline.name, key).model_dump(mode="json")
    except PreviewRefused as exc:
        raise RunRefused(f"Cannot preview this step: {exc}.") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][3:])  # after pipelines.<name>.phases
        raise RunRefused(
            f"Cannot preview yet: fix the steps up to this one first ({where}: {first['msg']})."
        ) from None
    return launch.enqueue(
        project,
        spec,
        {pipeline.name: None},
        [pipeline.name],
        {},
        user,
        extra={"kind": RunKind.PREVIEW, "preview_step": key, "keep_outputs": False, "max_attempts": 1},
    )
