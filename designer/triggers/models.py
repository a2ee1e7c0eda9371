"""Triggers and alerts: a project's run parameters, schedules (and what each fired), webhooks, backfills,
and where its alerts go (with every delivery)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse

from designer.teams.models import identifier_validator
from orchestrator import Parameter, ParamType

PARAM_TYPE_CHOICES = [(t.value, t.value) for t in ParamType]


class RunParameter(models.Model):
    """One typed parameter a project declares for its runs (``${{ variables.NAME }}`` in its pipelines)."""

    project = models.ForeignKey("designer.Project", on_delete=models.CASCADE, related_name="run_parameters")
    name = models.CharField(max_length=100, validators=[identifier_validator])
    type = models.CharField(max_length=10, choices=PARAM_TYPE_CHOICES, default=ParamType.STRING.value)
    #: the typed default (None: no default)
    default = models.JSONField(null=True, blank=True)
    description = models.CharField(max_length=300, blank=True)
    required = models.BooleanField(default=False)
    #: the allowed values of a ``choice`` parameter
    choices = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_run_parameter")]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def as_parameter(self) -> Parameter:
        """The engine's declaration of this parameter."""
        return Parameter(
            self.name,
            ParamType(self.type),
            self.default,
            self.description,
            self.required,
            tuple(str(c) for c in self.choices or ()),
        )


class CatchUp(models.TextChoices):
    """What a schedule does with fire times it missed (no worker was running, the site was down)."""

    SKIP = "skip", "Skip missed times"
    LATEST = "latest", "Run the latest missed time once"
    ALL = "all", "Run every missed time, up to a limit"


class Schedule(models.Model):
    """A cron expression in a time zone that starts runs of a project, or of one of its pipelines."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="schedules")
    project = models.ForeignKey("designer.Project", on_delete=models.CASCADE, related_name="schedules")
    #: None: every pipeline of the project
    pipeline = models.ForeignKey(
        "designer.Pipeline", null=True, blank=True, on_delete=models.CASCADE, related_name="schedules"
    )
    name = models.SlugField(max_length=100)
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    #: run parameter values (typed, checked against the project's declaration when saved and when fired)
    variables = models.JSONField(default=dict, blank=True)
    paused = models.BooleanField(default=False)
    catch_up = models.CharField(max_length=8, choices=CatchUp.choices, default=CatchUp.LATEST)
    #: the most missed times ``CatchUp.ALL`` starts (the latest ones)
    catch_up_limit = models.PositiveIntegerField(default=10)
    #: the next fire time (UTC); None while paused
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fire_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_schedule_name")]
        indexes = [models.Index(fields=["paused", "next_fire_at"], name="schedule_due_idx")]

    def __str__(self) -> str:
        return f"schedule {self.name}"

    @property
    def label(self) -> str:
        """How a run it started names it: "schedule nightly"."""
        return f"schedule {self.name}"

    @property
    def target(self) -> str:
        return self.pipeline.name if self.pipeline_id and self.pipeline else "all pipelines"

    def get_absolute_url(self) -> str:
        project = self.project
        return reverse(
            "designer-schedule",
            kwargs={"team": project.team.slug, "project": project.slug, "schedule_id": self.pk},
        )


class ScheduleFire(models.Model):
    """One fire time of a schedule, written once: its unique (schedule, fire_at) is what makes firing
    exactly once across workers and restarts (the worker that inserts it starts the run, in the same
    transaction; the others' inserts fail and they skip it)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    fire_at = models.DateTimeField()
    run = models.ForeignKey(
        "designer.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: why no run started (the project had errors...), or which catch-up policy skipped it
    note = models.CharField(max_length=500, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fire_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "fire_at"], name="unique_schedule_fire")]

    def __str__(self) -> str:
        return f"{self.schedule_id} at {self.fire_at.isoformat()}"


class Webhook(models.Model):
    """A URL that starts a run when called with its token; the token is stored hashed, never shown again."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="webhooks")
    project = models.ForeignKey("designer.Project", on_delete=models.CASCADE, related_name="webhooks")
    pipeline = models.ForeignKey(
        "designer.Pipeline", null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    name = models.SlugField(max_length=100)
    #: the public part of its URL (/hooks/<hook_id>/): not a secret
    hook_id = models.CharField(max_length=32, unique=True)
    #: SHA-256 of the token (hex)
    token_hash = models.CharField(max_length=64)
    #: the HMAC-SHA256 signing secret, Fernet-encrypted (designer.teams.crypto); blank: no signature check
    signing_ciphertext = models.TextField(blank=True)
    #: variable name -> JSON pointer into the request body ("/release/tag")
    mapping = models.JSONField(default=dict, blank=True)
    #: fixed run parameter values (the body's mapped values win)
    variables = models.JSONField(default=dict, blank=True)
    #: calls accepted per minute
    rate_limit = models.PositiveIntegerField(default=30)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_webhook_name")]

    def __str__(self) -> str:
        return f"webhook {self.name}"

    @property
    def label(self) -> str:
        return f"webhook {self.name}"

    @property
    def signed(self) -> bool:
        return bool(self.signing_ciphertext)

    @property
    def target(self) -> str:
        return self.pipeline.name if self.pipeline_id and self.pipeline else "all pipelines"

    def path(self) -> str:
        return reverse("designer-hook", kwargs={"hook": self.hook_id})


class WebhookCall(models.Model):
    """One accepted call of a webhook (its rate limit counts these; the page lists the latest)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="calls")
    at = models.DateTimeField(db_index=True)
    run = models.ForeignKey(
        "designer.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.webhook_id} at {self.at.isoformat()}"


class Backfill(models.Model):
    """A schedule run over a range of past dates, a few at a time."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="backfills")
    project = models.ForeignKey("designer.Project", on_delete=models.CASCADE, related_name="backfills")
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="backfills")
    start = models.DateField()
    end = models.DateField()
    concurrency = models.PositiveIntegerField(default=1)
    #: True once every date has a finished run
    done = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"backfill {self.range_label}"

    @property
    def range_label(self) -> str:
        """``2026-11-01..30``: the end says only what differs from the start."""
        return range_label(self.start, self.end)

    @property
    def label(self) -> str:
        return f"backfill {self.range_label}"

    def get_absolute_url(self) -> str:
        project = self.project
        return reverse(
            "designer-backfill",
            kwargs={"team": project.team.slug, "project": project.slug, "backfill_id": self.pk},
        )


def range_label(start: dt.date, end: dt.date) -> str:
    """``2026-11-01..30``, ``2026-11-25..12-05``, ``2026-12-30..2027-01-02``."""
    if start == end:
        return start.isoformat()
    if start.year != end.year:
        return f"{start.isoformat()}..{end.isoformat()}"
    if start.month != end.month:
        return f"{start.isoformat()}..{end:%m-%d}"
    return f"{start.isoformat()}..{end:%d}"


class BackfillDate(models.Model):
    """One date of a backfill: its run (the latest attempt) once started."""

    backfill = models.ForeignKey(Backfill, on_delete=models.CASCADE, related_name="dates")
    day = models.DateField()
    #: the logical date and time of its run (the schedule's fire time that day), ISO with offset
    logical = models.CharField(max_length=40)
    run = models.ForeignKey(
        "designer.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveIntegerField(default=0)
    #: why it could not start
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["backfill", "day"]
        constraints = [models.UniqueConstraint(fields=["backfill", "day"], name="unique_backfill_day")]

    def __str__(self) -> str:
        return f"{self.backfill_id} {self.day.isoformat()}"

    @property
    def state(self) -> str:
        """pending (no run yet), refused (could not start), or its run's state."""
        if self.run_id is None:
            return "refused" if self.note else "pending"
        return str(self.run.state) if self.run else "pending"


class DestinationKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    SLACK = "slack", "Slack-compatible webhook"
    JSON = "json", "Webhook (generic JSON)"


class AlertDestination(models.Model):
    """Where a project's alerts go: e-mail addresses, or a webhook URL stored encrypted (it often holds a
    credential, like Slack's)."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="alert_destinations")
    project = models.ForeignKey(
        "designer.Project", on_delete=models.CASCADE, related_name="alert_destinations"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=DestinationKind.choices)
    #: comma-separated addresses (e-mail)
    emails = models.CharField(max_length=1000, blank=True)
    #: the webhook URL, Fernet-encrypted (designer.teams.crypto)
    url_ciphertext = models.TextField(blank=True)
    #: what the page shows of the URL: scheme and host only
    url_hint = models.CharField(max_length=300, blank=True)
    on_failure = models.BooleanField(default=True)
    on_success = models.BooleanField(default=False)
    on_recovery = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]

    def __str__(self) -> str:
        return f"alerts to {self.name}"

    @property
    def shown_target(self) -> str:
        return self.emails if self.kind == DestinationKind.EMAIL else self.url_hint

    def events(self) -> list[str]:
        return [
            e
            for e, on in (
                ("failure", self.on_failure),
                ("success", self.on_success),
                ("recovery", self.on_recovery),
            )
            if on
        ]


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    #: the run needed no alert for this destination (it is recorded so it is decided once)
    NONE = "none", "Nothing to send"


class Delivery(models.Model):
    """One alert for one run to one destination (unique: decided and sent once), with its attempts."""

    destination = models.ForeignKey(AlertDestination, on_delete=models.CASCADE, related_name="deliveries")
    #: None: a "send test" message
    run = models.ForeignKey("designer.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=10)
    state = models.CharField(max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    #: one line per attempt: {"at", "ok", "detail"}
    log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "run"],
                condition=models.Q(run__isnull=False),
                name="unique_run_delivery",
            )
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event} alert of run {self.run_id} to {self.destination_id} ({self.state})"

    def attempt_lines(self) -> list[dict[str, Any]]:
        return list(self.log or [])
