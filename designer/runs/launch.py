"""Starting runs: snapshot the project's pipelines into a queued Run, re-run and retry, cancel."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from designer.editor.models import Project
from designer.runs import groups, queue, records, selection
from designer.runs.models import PipelineRun, Run, StepRun
from designer.runs.publish import publish_sync
from designer.teams.variables import effective_variables
from orchestrator import PARTIAL, PHASE_ORDER, ProjectSpec, Status


class RunRefused(Exception):
    """A run cannot start; the message tells the user why and what to do."""


def snapshot(
    project: Project,
    names: Iterable[str] | None,
    variables: Mapping[str, Any] | None,
    *,
    draft: str | None = None,
    upstream: bool | None = False,
) -> tuple[dict[str, Any], dict[str, int | None]]:
    """The ProjectSpec JSON a run executes, and ``{pipeline: version number}`` (None: a draft). Each
    pipeline runs its latest saved version, ``draft`` its draft; see ``selection.choose``. Raises
    RunRefused."""
    try:
        pipelines = selection.choose(project, names, draft=draft, upstream=upstream)
    except selection.SelectionRefused as exc:
        raise RunRefused(str(exc)) from None
    chosen = {p.name for p in pipelines}
    specs: dict[str, Any] = {}
    versions: dict[str, int | None] = {}
    for pipeline in pipelines:
        spec = copy.deepcopy(pipeline.spec)
        # Running a selection runs just it: needs outside the selection are taken as already done.
        spec["needs"] = [n for n in (spec.get("needs") or []) if n in chosen]
        specs[pipeline.name] = spec
        versions[pipeline.name] = pipeline.version
    data = {
        "variables": effective_variables(project, variables),
        "concurrency": project.concurrency,
        "pipelines": specs,
    }
    try:
        spec_model = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        raise RunRefused(f"Cannot run: {exc.errors()[0]['msg']}") from None
    return spec_model.model_dump(mode="json"), versions


def _layout_rows(run: Run, spec: dict[str, Any], names: list[str]) -> None:
    model = ProjectSpec.model_validate(spec, context={PARTIAL: True})  # a preview's is cut after its step
    step_rows = []
    for position, name in enumerate(names):
        pipeline_run = PipelineRun.objects.create(run=run, name=name, position=position)
        pipeline = model.pipelines[name]
        n = 0
        for phase_name in PHASE_ORDER:
            phase = pipeline.phase(phase_name)
            for step in phase.all_steps() if phase else []:
                step_rows.append(
                    StepRun(
                        pipeline_run=pipeline_run,
                        phase=phase_name.value,
                        step_id=step.id,
                        plugin=step.plugin,
                        position=n,
                    )
                )
                n += 1
    StepRun.objects.bulk_create(step_rows)


def _announce(run: Run) -> None:
    """After commit: show the run on the team's dashboard (a preview is not listed there) and wake a
    worker."""
    from designer.runs import worker

    def send() -> None:
        if not run.is_preview:
            publish_sync([groups.run_update_message(run)])
        worker.wake_workers()

    transaction.on_commit(send)


def enqueue(
    project: Project,
    spec: dict[str, Any],
    versions: dict[str, Any],
    pipelines: list[str],
    variables: Mapping[str, Any] | None,
    user: Any,
    rerun_of: Run | None = None,
    *,
    trigger: str = "",
    logical_datetime: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Run:
    """Create a queued run of ``spec`` (its PipelineRun / StepRun rows included) and announce it.

    ``trigger`` names what started it besides a person ("schedule nightly"); ``logical_datetime`` (ISO) is
    its ``${{ run.date }}`` / ``${{ run.datetime }}`` (blank: when it was queued); ``extra``: more fields of
    the row (a preview's, a resume's: ``designer.runs.resume``). It keeps its steps' outputs as its
    project says."""
    names = pipelines or list(spec["pipelines"])
    with transaction.atomic():
        fields: dict[str, Any] = {
            "team": project.team,
            "project": project,
            "pipelines": pipelines,
            "spec": spec,
            "versions": versions,
            "variables": dict(variables or {}),
            "created_by": user if getattr(user, "is_authenticated", False) else None,
            "rerun_of": rerun_of,
            "max_attempts": settings.PIPEDECK_RUN_MAX_ATTEMPTS,
            "trigger": trigger[:200],
            "logical_datetime": logical_datetime,
            "keep_outputs": project.keep_outputs,
        }
        run = Run.objects.create(**{**fields, **(extra or {})})
        _layout_rows(run, spec, names)
        _announce(run)
    return run


def check_overrides(variables: Mapping[str, Any]) -> None:
    """Run-time values are literal: a reference in one (``${{ env.X }}``, ``${{ secrets.X }}``...) would let
    whoever starts a run read what only the pipeline's editors may use. Raises RunRefused."""
    for name, value in variables.items():
        if has_reference_text(value):
            raise RunRefused(
                f"The value of {name} holds '${{{{': values given when starting a run are literal, "
                "references are not resolved. Put references in the project's variables instead."
            )


def has_reference_text(value: Any) -> bool:
    """True when ``value`` (or a string inside it) holds ``${{``."""
    if isinstance(value, str):
        return "${{" in value
    if isinstance(value, Mapping):
        return any(has_reference_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_reference_text(v) for v in value)
    return False


def start_run(
    project: Project,
    user: Any,
    pipelines: Iterable[str] | None = None,
    variables: Mapping[str, Any] | None = None,
    *,
    trigger: str = "",
    logical_datetime: str = "",
    upstream: bool | None = None,
    draft: str | None = None,
) -> Run:
    """Queue a run of the project (or of the named pipelines). Raises RunRefused with a user-facing reason.

    ``trigger`` and ``logical_datetime``: see ``enqueue``. ``variables`` are checked against the project's
    run parameters and typed (defaults filled in). ``upstream``: run what the named pipelines need too
    (None: when one of those never succeeded); ``draft``: the pipeline whose draft runs (not its latest
    saved version)."""
    from designer.triggers.parameters import check_run_values  # triggers builds on this module

    variables = check_run_values(project, variables or {})
    check_overrides(variables)
    names = sorted(set(pipelines or []))
    spec, versions = snapshot(project, names, variables, draft=draft, upstream=upstream)
    if names:  # with the upstream pipelines it added (the engine orders them by their needs)
        names = sorted(versions)
    return enqueue(
        project,
        spec,
        versions,
        names if names else [],
        variables,
        user,
        trigger=trigger,
        logical_datetime=logical_datetime,
    )


def rerun(run: Run, user: Any, only_failed: bool = False) -> Run:
    """A new run of the same snapshot; with ``only_failed``, of the pipelines that failed or were skipped."""
    names = list(run.pipelines)
    if only_failed:
        names = list(
            run.pipeline_runs.filter(state__in=[Status.FAILED, Status.SKIPPED, Status.CANCELLED]).values_list(
                "name", flat=True
            )
        )
        if not names:
            raise RunRefused("Nothing to retry: every pipeline of this run succeeded.")
        names.sort()
    spec = run.spec
    if names:
        spec = copy.deepcopy(spec)
        for name in names:
            pipeline = spec["pipelines"][name]
            pipeline["needs"] = [n for n in pipeline.get("needs", []) if n in names]
        spec["pipelines"] = {name: spec["pipelines"][name] for name in spec["pipelines"] if name in names}
    return enqueue(
        run.project,
        spec,
        run.versions,
        names,
        run.variables,
        user,
        rerun_of=run,
        logical_datetime=run.logical_datetime,  # a re-run of a backfill's date runs that date again
    )


def cancel(run: Run) -> bool:
    """Cancel a queued run at once, or ask the worker of a running one to stop it. False when finished."""
    from designer.runs import worker

    if queue.cancel_queued(run.pk):
        event = records.finish_without_engine(run.pk, Status.CANCELLED, "cancelled")
        run.refresh_from_db()
        publish_sync(
            [
                (groups.run_group(run.pk), groups.run_events_message(run.pk, [event.as_message()])),
                groups.run_update_message(run),
            ]
        )
        return True
    if queue.request_cancel(run.pk):
        worker.cancel_locally(run.pk)
        return True
    return False
