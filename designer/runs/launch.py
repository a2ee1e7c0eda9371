"""Starting runs: snapshot the project's pipelines into a queued Run, re-run and retry, cancel."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Reads:
    """What queuing a run of a project reads besides the request: its declared run parameters, its
    variables (before a run's own values) and its pipelines. Read once to queue several runs at a time
    (``start_runs``)."""

    parameters: list[Any]
    variables: dict[str, Any]
    pipelines: selection.ProjectPipelines

    @classmethod
    def of(cls, project: Project, requests: list[RunRequest]) -> Reads:
        """What ``requests`` read: the pipelines they name read at once (every pipeline when one runs the
        whole project), those their pipelines need when asked for."""
        from designer.triggers.parameters import declared  # triggers builds on this module

        named = [set(request.pipelines) for request in requests]
        wanted = None if not all(named) else set().union(*named)
        pipelines = selection.ProjectPipelines(project, wanted)
        return cls(declared(project), effective_variables(project), pipelines)


def snapshot(
    project: Project,
    names: Iterable[str] | None,
    variables: Mapping[str, Any] | None,
    *,
    draft: str | None = None,
    upstream: bool | None = False,
    reads: Reads | None = None,
) -> tuple[ProjectSpec, dict[str, int | None]]:
    """The ProjectSpec a run executes (``model_dump(mode="json")`` is what its row stores), and
    ``{pipeline: version number}`` (None: a draft). Each pipeline runs its latest saved version, ``draft``
    its draft; see ``selection.choose``. ``reads``: what several runs queued together read once. Raises
    RunRefused."""
    known = reads.pipelines if reads is not None else None
    try:
        pipelines = selection.choose(project, names, draft=draft, upstream=upstream, known=known)
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
        "variables": (
            effective_variables(project, variables)
            if reads is None
            else {**reads.variables, **(variables or {})}
        ),
        "concurrency": project.concurrency,
        "pipelines": specs,
    }
    try:
        return ProjectSpec.model_validate(data), versions
    except ValidationError as exc:
        raise RunRefused(f"Cannot run: {exc.errors()[0]['msg']}") from None


@dataclass
class _NewRun:
    """A Run row not inserted yet, the pipelines it lays out and its spec (validated, when at hand)."""

    run: Run
    names: list[str]
    model: ProjectSpec | None = None


def _layout_rows(new: list[_NewRun]) -> None:
    """The PipelineRun and StepRun rows of the (inserted) runs: one insert per table."""
    pipeline_runs: list[tuple[PipelineRun, Any]] = []
    for item in new:
        # a preview's spec is cut after its step: validated again as such
        model = item.model or ProjectSpec.model_validate(item.run.spec, context={PARTIAL: True})
        for position, name in enumerate(item.names):
            pipeline_run = PipelineRun(run=item.run, name=name, position=position)
            pipeline_runs.append((pipeline_run, model.pipelines[name]))
    PipelineRun.objects.bulk_create([pipeline_run for pipeline_run, _ in pipeline_runs])
    step_rows = []
    for pipeline_run, pipeline in pipeline_runs:
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


def _announce(runs: list[Run]) -> None:
    """After commit: show the runs on the team's dashboard (a preview is not listed there) and wake the
    workers, once for them all."""
    from designer.runs import worker

    def send() -> None:
        messages = [groups.run_update_message(run) for run in runs if not run.is_preview]
        if messages:
            publish_sync(messages)
        worker.wake_workers()

    transaction.on_commit(send)


def _insert(new: list[_NewRun]) -> list[Run]:
    """Insert the runs with their PipelineRun / StepRun rows, in one transaction, and announce them."""
    if not new:
        return []
    with transaction.atomic():
        runs = Run.objects.bulk_create([item.run for item in new])
        _layout_rows(new)
        _announce(runs)
    return runs


def _fields(
    project: Project,
    spec: dict[str, Any],
    versions: dict[str, Any],
    pipelines: list[str],
    variables: Mapping[str, Any] | None,
    user: Any,
    *,
    trigger: str = "",
    logical_datetime: str = "",
) -> dict[str, Any]:
    return {
        "team": project.team,
        "project": project,
        "pipelines": pipelines,
        "spec": spec,
        "versions": versions,
        "variables": dict(variables or {}),
        "created_by": user if getattr(user, "is_authenticated", False) else None,
        "max_attempts": settings.PIPEDECK_RUN_MAX_ATTEMPTS,
        "trigger": trigger[:200],
        "logical_datetime": logical_datetime,
        "keep_outputs": project.keep_outputs,
    }


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
    fields = _fields(
        project,
        spec,
        versions,
        pipelines,
        variables,
        user,
        trigger=trigger,
        logical_datetime=logical_datetime,
    )
    run = Run(**{**fields, "rerun_of": rerun_of, **(extra or {})})
    return _insert([_NewRun(run, pipelines or list(spec["pipelines"]))])[0]


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


@dataclass(frozen=True)
class RunRequest:
    """One run for ``start_runs``: its pipelines (empty: the whole project; their upstream when one of
    those never succeeded), its parameter values, and its trigger and logical date (see ``enqueue``)."""

    pipelines: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = ""
    logical_datetime: str = ""


def _prepared(
    project: Project,
    request: RunRequest,
    user: Any,
    *,
    upstream: bool | None = None,
    draft: str | None = None,
    reads: Reads | None = None,
) -> _NewRun:
    """The run ``request`` asks for, checked and not inserted yet. Raises RunRefused."""
    from designer.triggers.parameters import check_run_values  # triggers builds on this module

    parameters = reads.parameters if reads is not None else None
    variables = check_run_values(project, request.values, parameters)
    check_overrides(variables)
    names = sorted(set(request.pipelines))
    model, versions = snapshot(project, names, variables, draft=draft, upstream=upstream, reads=reads)
    if names:  # with the upstream pipelines it added (the engine orders them by their needs)
        names = sorted(versions)
    fields = _fields(
        project,
        model.model_dump(mode="json"),
        versions,
        names,
        variables,
        user,
        trigger=request.trigger,
        logical_datetime=request.logical_datetime,
    )
    return _NewRun(Run(**fields), names or list(model.pipelines), model)


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
    request = RunRequest(tuple(pipelines or ()), variables or {}, trigger, logical_datetime)
    return _insert([_prepared(project, request, user, upstream=upstream, draft=draft)])[0]


def start_runs(project: Project, requests: Iterable[RunRequest], user: Any = None) -> list[Run | RunRefused]:
    """Queue several runs of ``project`` at once (schedules firing at the same minute): the project's
    parameters, variables and pipelines read once, each table's rows inserted in one statement. For each
    request, in order, its run or the RunRefused that says why it did not start."""
    requests = list(requests)
    reads = Reads.of(project, requests)
    outcome: list[_NewRun | RunRefused] = []
    for request in requests:
        try:
            outcome.append(_prepared(project, request, user, reads=reads))
        except RunRefused as exc:
            outcome.append(exc)
    runs = iter(_insert([item for item in outcome if isinstance(item, _NewRun)]))
    return [item if isinstance(item, RunRefused) else next(runs) for item in outcome]


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
