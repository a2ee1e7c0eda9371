"""Runs: the queue row (Run), what it ran (PipelineRun, StepRun) and everything it reported (RunEvent)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, Value, When
from django.utils import timezone

from orchestrator import Status, run_context

#: the states of a run: the engine's ``Status``, except "skipped" (only a run's pipelines are skipped) and
#: "reused" (only a resumed run's steps are)
RUN_STATES = tuple(s for s in Status if s not in (Status.SKIPPED, Status.REUSED))
RUN_STATE_CHOICES = [(s.value, s.value.capitalize()) for s in RUN_STATES]
#: the states of a pipeline or step of a run: the engine's
UNIT_STATE_CHOICES = [(s.value, s.value) for s in Status]
FINISHED_STATES = frozenset(s for s in RUN_STATES if s.finished)


class RunKind(models.TextChoices):
    RUN = "run", "Run"
    #: a step's preview from the editor: not listed with the runs, never loads anything
    PREVIEW = "preview", "Preview"


class RunQuerySet(models.QuerySet["Run"]):
    def queued(self) -> RunQuerySet:
        """Runs waiting for a worker (of a format this code runs): previews first (someone is waiting
        for each in the editor), then oldest first."""
        first = Case(When(kind=RunKind.PREVIEW, then=Value(0)), default=Value(1))
        return self.filter(state=Status.QUEUED, format__lte=RUN_FORMAT).order_by(first, "created_at", "pk")

    def listed(self) -> RunQuerySet:
        """Runs as the dashboard, the editor's states and alerts know them: previews left out."""
        return self.exclude(kind=RunKind.PREVIEW)


#: the format of the spec a run stores; a worker claims only runs of a format it knows, so during an upgrade
#: old workers leave new runs to new workers. Bump it when a stored spec changes in a way older code
#: cannot run. 2: specs may use ``${{ run.date }}`` / ``run.datetime`` / ``run.id`` (designer/triggers).
#: 3: previews (a spec cut after its step), resumes from kept outputs (designer/runs/resume.py).
RUN_FORMAT = 3


class Run(models.Model):
    """One execution of a project (all pipelines or a selection); the row is also the work queue."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="runs")
    project = models.ForeignKey("designer.Project", on_delete=models.CASCADE, related_name="runs")
    #: pipeline names to run ([] = every pipeline of the snapshot)
    pipelines = models.JSONField(default=list, blank=True)
    #: the ProjectSpec JSON the run executes: editing the project never changes it
    spec = models.JSONField()
    #: pipeline name -> PipelineVersion number the snapshot was taken from
    versions = models.JSONField(default=dict, blank=True)
    #: ``RUN_FORMAT`` of the code that queued it
    format = models.PositiveSmallIntegerField(default=RUN_FORMAT)
    variables = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=RUN_STATE_CHOICES, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    #: what started it besides a person: "schedule nightly", "webhook deploy", "backfill 2026-11-01..30"
    trigger = models.CharField(max_length=200, blank=True)
    #: its logical date and time (``${{ run.date }}``), ISO with offset; blank: when it was queued
    logical_datetime = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # queue bookkeeping
    worker_id = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    #: the last RunEvent.seq stored (events are numbered 1, 2, 3... per run, across attempts)
    last_seq = models.PositiveIntegerField(default=0)
    # step outputs (designer/runs/outputs.py)
    kind = models.CharField(max_length=16, choices=RunKind.choices, default=RunKind.RUN)
    #: a preview's step (``phase.step_id``) of its one pipeline
    preview_step = models.CharField(max_length=300, blank=True)
    #: it keeps each step's table as Parquet in the team's data root (its project's setting when queued)
    keep_outputs = models.BooleanField(default=False)
    #: its kept files are still there (the retention rule clears it when it removes them)
    outputs_kept = models.BooleanField(default=False)
    #: the run whose kept outputs it reuses, and the step each of its pipelines starts at
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumes"
    )
    resume_steps = models.JSONField(default=dict, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "created_at"], name="run_queue_idx"),
            models.Index(fields=["team", "-created_at"], name="run_team_idx"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_preview(self) -> bool:
        return self.kind == RunKind.PREVIEW

    @property
    def is_draft(self) -> bool:
        """True when a pipeline of it ran its draft, not a saved version (the editor's "Run draft")."""
        return any(number is None for number in (self.versions or {}).values())

    @property
    def pipeline_names(self) -> list[str]:
        """The pipelines this run executes: those chosen, else every pipeline of its snapshot."""
        chosen: list[str] = self.pipelines
        return chosen or sorted((self.spec or {}).get("pipelines", {}))

    def context(self) -> dict[str, str]:
        """What ``${{ run.date }}``, ``${{ run.datetime }}`` and ``${{ run.id }}`` resolve to in this run."""
        if self.logical_datetime:
            logical = dt.datetime.fromisoformat(self.logical_datetime)
        else:
            logical = timezone.localtime(self.created_at or timezone.now())
        return run_context(str(self.pk), logical)

    def summary(self) -> dict[str, Any]:
        """The JSON the dashboard shows for a run (sent over the team's websocket group too)."""
        return {
            "id": self.pk,
            "state": self.state,
            "project": self.project.name if self.project_id else "",
            "project_slug": self.project.slug if self.project_id else "",
            "pipelines": self.pipeline_names,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration": self.duration,
            "error": self.error,
            "attempt": self.attempt,
            "trigger": self.trigger,
        }


class PipelineRun(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="pipeline_runs")
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=UNIT_STATE_CHOICES, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="uniq_pipelinerun_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class StepRun(models.Model):
    pipeline_run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="step_runs")
    phase = models.CharField(max_length=40)
    step_id = models.CharField(max_length=200)
    plugin = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=UNIT_STATE_CHOICES, default=Status.QUEUED)
    rows_in = models.BigIntegerField(null=True, blank=True)
    rows_out = models.BigIntegerField(null=True, blank=True)
    progress_rows = models.BigIntegerField(null=True, blank=True)
    progress_total = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["pipeline_run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline_run", "phase", "step_id"], name="uniq_steprun_step")
        ]

    def __str__(self) -> str:
        return f"{self.phase}.{self.step_id} ({self.state})"


class StepOutput(models.Model):
    """One step's output in a run, as the run's process summarised it: columns and types, row and null
    counts (None when the table streamed and was not kept), the first rows (values cut to fit). Stored
    with the run, never in its events."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="step_outputs")
    pipeline = models.CharField(max_length=200)
    phase = models.CharField(max_length=40)
    step_id = models.CharField(max_length=200)
    #: [[name, type], ...]
    columns = models.JSONField(default=list)
    rows = models.BigIntegerField(null=True, blank=True)
    #: {column: nulls}
    nulls = models.JSONField(null=True, blank=True)
    #: the first rows, one list of values per row
    sample = models.JSONField(default=list)
    truncated = models.BooleanField(default=False)
    #: the Parquet file of the whole table in the run's outputs folder, when kept
    kept_file = models.CharField(max_length=300, blank=True)
    #: the step did not run: its output is the one its run resumed from
    reused = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "pipeline", "phase", "step_id"], name="uniq_stepoutput_step"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.pipeline}.{self.phase}.{self.step_id}"

    @property
    def key(self) -> str:
        return f"{self.phase}.{self.step_id}"

    def column_names(self) -> list[str]:
        return [str(name) for name, _ in self.columns]


class RunEvent(models.Model):
    """One orchestrator event, numbered gaplessly per run so a client can replay and detect gaps."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    ts = models.DateTimeField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="uniq_runevent_seq")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.kind}"

    def as_message(self) -> dict[str, Any]:
        """The JSON a websocket client or the events endpoint receives."""
        return {"seq": self.seq, "kind": self.kind, "ts": self.ts.timestamp(), **self.payload}


class WorkerBeat(models.Model):
    """A worker process that is alive: it renews ``beat_at`` every third of its lease (readiness reads it)."""

    worker_id = models.CharField(max_length=200, unique=True)
    #: the highest ``RUN_FORMAT`` it runs
    run_format = models.PositiveSmallIntegerField()
    lease = models.FloatField()
    started_at = models.DateTimeField(auto_now_add=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"worker {self.worker_id}"
