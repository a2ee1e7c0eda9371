"""Step outputs of runs: what a run asks its process to keep, the summaries the process sends back (stored
as ``StepOutput`` rows with the run, never as events), and what the run page and the editor read of them.

A run that keeps its outputs (its project's "keep outputs for resume") writes each step's table as Parquet
under ``<team data root>/.outputs/run-<id>/``; ``designer.runs.retention`` removes them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from designer.runs.isolation import team_data_root
from designer.runs.models import Run, StepOutput
from designer.runs.queue import Claim, owned
from orchestrator import PARTIAL, PipelineSpec, chain_prints, step_inputs

#: the folder of the team's data root that holds the runs' kept outputs
OUTPUTS_FOLDER = ".outputs"


def outputs_folder(run_id: int) -> str:
    """Where run ``run_id`` keeps its outputs, relative to its team's data root."""
    return f"{OUTPUTS_FOLDER}/run-{run_id}"


def outputs_path(run: Run) -> Path:
    """The run's outputs folder on disk."""
    return team_data_root(run.team) / outputs_folder(run.pk)


def request_options(run: Run) -> dict[str, Any]:
    """The ``RunRequest`` fields of what ``run`` asks beyond running: summaries of every step's output
    (Parquet too when it keeps its outputs), where it resumes from, the step a preview stops at."""
    outputs: dict[str, Any] = {
        "directory": outputs_folder(run.pk) if run.keep_outputs and not run.is_preview else None,
        "sample_rows": settings.PIPEDECK_OUTPUT_SAMPLE_ROWS,
        "sample_bytes": settings.PIPEDECK_OUTPUT_SAMPLE_BYTES,
    }
    options: dict[str, Any] = {"outputs": outputs}
    if run.resumed_from_id and run.resume_steps:
        options["resume"] = {"directory": outputs_folder(run.resumed_from_id), "steps": run.resume_steps}
    if run.is_preview:
        options["preview"] = {
            "pipeline": run.pipeline_names[0],
            "step": run.preview_step,
            "row_limit": settings.PIPEDECK_PREVIEW_ROWS,
        }
    return options


def store(claim: Claim, outputs: list[dict[str, Any]]) -> bool:
    """Store summaries the run's process sent (``StepOutput.to_dict()``); False when the claim is stale."""
    with transaction.atomic():
        if not owned(claim).exists():
            return False
        rows = [
            StepOutput(
                run_id=claim.run_id,
                pipeline=str(output["pipeline"]),
                phase=str(output["phase"]),
                step_id=str(output["step"]),
                columns=[list(c) for c in output.get("columns") or []],
                rows=output.get("rows"),
                nulls=output.get("nulls"),
                sample=output.get("sample") or [],
                truncated=bool(output.get("truncated")),
                kept_file=str(output.get("kept") or ""),
                reused=bool(output.get("reused")),
            )
            for output in outputs
        ]
        StepOutput.objects.bulk_create(  # one statement; a step reported again replaces its row
            rows,
            update_conflicts=True,
            unique_fields=["run", "pipeline", "phase", "step_id"],
            update_fields=["columns", "rows", "nulls", "sample", "truncated", "kept_file", "reused"],
        )
        if any(o.get("kept") for o in outputs):
            Run.objects.filter(pk=claim.run_id).update(outputs_kept=True)
    return True


def reset(run_id: int) -> None:
    """A new attempt of the run reports its outputs again."""
    StepOutput.objects.filter(run_id=run_id).delete()


def step_output(run: Run, pipeline: str, key: str) -> StepOutput | None:
    """The output of step ``key`` (``phase.step_id``) of ``pipeline`` in ``run``."""
    phase, _, step_id = key.partition(".")
    return StepOutput.objects.filter(run=run, pipeline=pipeline, phase=phase, step_id=step_id).first()


def pipeline_spec(run: Run, pipeline: str) -> PipelineSpec | None:
    """The spec ``run`` ran ``pipeline`` with (None when it has no such pipeline)."""
    data = (run.spec or {}).get("pipelines", {}).get(pipeline)
    return None if data is None else parsed(data)


def input_outputs(run: Run, pipeline: str, key: str) -> list[StepOutput]:
    """The outputs step ``key`` read in ``run`` (the previous table; each extract step's for a merge)."""
    spec = pipeline_spec(run, pipeline)
    if spec is None:
        return []
    keys = step_inputs(spec).get(key, [])
    found = {o.key: o for o in StepOutput.objects.filter(run=run, pipeline=pipeline)}
    return [found[k] for k in keys if k in found]


#: how many of the newest outputs of a pipeline are looked through for the columns of each step
COLUMNS_SCAN = 500
#: run specs read per query while looking through them (the newest run usually tells every step)
SPECS_AT_ONCE = 8


def parsed(spec: dict[str, Any]) -> PipelineSpec | None:
    """A pipeline's spec (a draft may miss phases), or None when its steps do not validate yet."""
    try:
        return PipelineSpec.model_validate(spec, context={PARTIAL: True})
    except ValueError:
        return None


def known_columns(project_id: int, name: str, spec: dict[str, Any]) -> dict[str, list[str]]:
    """``{phase.step_id: [column, ...]}``: the output columns of the steps of pipeline ``name`` (as ``spec``
    has it now) that a run or preview reported while the step and every step its table came through were
    as they are now: what the editor's forms offer and what its validation checks names against."""
    current = parsed(spec)
    return {} if current is None else _known_columns(project_id, name, current)


def _known_columns(project_id: int, name: str, current: PipelineSpec) -> dict[str, list[str]]:
    now = chain_prints(current)
    rows = list(
        StepOutput.objects.filter(run__project_id=project_id, pipeline=name)
        .order_by("-run__created_at", "-run_id")
        .values_list("pk", "run_id", "phase", "step_id")[:COLUMNS_SCAN]
    )
    order = list(dict.fromkeys(run_id for _, run_id, *_ in rows))  # newest first
    specs: dict[int, Any] = {}
    then: dict[int, dict[str, str]] = {}
    chosen: dict[str, int] = {}  # step key -> the output row telling its columns
    for pk, run_id, phase, step_id in rows:
        key = f"{phase}.{step_id}"
        if key in chosen or key not in now:
            continue
        if run_id not in specs:  # read with the next few runs' (most saves need the newest run only)
            start = order.index(run_id)
            batch = order[start : start + SPECS_AT_ONCE]
            specs.update(Run.objects.filter(pk__in=batch).values_list("pk", "spec"))
        if run_id not in then:
            old = parsed(((specs.get(run_id) or {}).get("pipelines") or {}).get(name) or {})
            then[run_id] = chain_prints(old) if old is not None else {}
        if then[run_id].get(key) == now[key]:
            chosen[key] = pk
            if len(chosen) == len(now):
                break
    columns = dict(StepOutput.objects.filter(pk__in=chosen.values()).values_list("pk", "columns"))
    return {key: [str(c[0]) for c in columns.get(pk) or []] for key, pk in chosen.items()}


def input_columns(project_id: int, name: str, spec: dict[str, Any], key: str) -> list[str]:
    """The columns step ``key`` reads, once known (the merge: those every extract step has)."""
    current = parsed(spec)
    if current is None:
        return []
    inputs = step_inputs(current).get(key, [])
    known = _known_columns(project_id, name, current)
    if not inputs or any(k not in known for k in inputs):
        return []
    first, *rest = [known[k] for k in inputs]
    return [c for c in first if all(c in other for other in rest)]


def latest_kept_run(project_id: int, pipeline: str) -> Run | None:
    """The newest finished run of the project that ran ``pipeline`` and still has its kept outputs."""
    runs = (
        Run.objects.listed().filter(project_id=project_id, outputs_kept=True).order_by("-created_at", "-pk")
    )
    for run in runs.select_related("team")[:50]:
        if pipeline in run.pipeline_names and run.finished:
            return run
    return None
