"""What a team shares besides its pipelines: encrypted secrets, variables and the activity feed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse

from designer.models.pipelines import Project
from designer.models.teams import Team

#: names usable in ``${{ secrets.X }}`` / ``${{ variables.X }}``
identifier_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]*$",
    "Use letters, digits and underscores only, not starting with a digit.",
)


class Secret(models.Model):
    """A team secret, stored only as Fernet ciphertext (see designer.crypto); the UI never shows it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100, validators=[identifier_validator])
    ciphertext = models.TextField()
    #: fingerprint of the key that encrypted ``ciphertext`` (rotate_secret_key re-encrypts the others)
    key_id = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_team_secret")]

    def __str__(self) -> str:
        return f"secret {self.name} of {self.team_id}"

    def __repr__(self) -> str:
        return f"<Secret {self.name!r} team={self.team_id}>"


class Variable(models.Model):
    """A value for ``${{ variables.NAME }}``: team-wide (project is null) or for one project (wins)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="variables")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="variable_overrides"
    )
    name = models.CharField(max_length=100, validators=[identifier_validator])
    value = models.JSONField(blank=True, null=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"], condition=Q(project__isnull=True), name="unique_team_variable"
            ),
            models.UniqueConstraint(
                fields=["project", "name"], condition=Q(project__isnull=False), name="unique_project_variable"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ActivityEvent(models.Model):
    """One line of a team's activity feed: who did what to which object, when."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_name = models.CharField(max_length=300)
    object_url = models.CharField(max_length=500, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["team", "-created_at"], name="activity_team_idx")]

    def __str__(self) -> str:
        return f"{self.actor} {self.verb} {self.object_type} {self.object_name}"


# ---- the activity feed, fed by the objects that carry their author ----------------------------------
# Pipelines (created_by), versions (author) and runs (created_by) know who acted, so their creation is
# recorded here, whichever view or service created them. Deletions, project changes and cancellations have
# no author on the row: their views call designer.activity.record(...) themselves.


@receiver(post_save, sender="designer.Pipeline", dispatch_uid="pipedeck-activity-pipeline")
def _pipeline_created(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not created or raw or getattr(instance, "_activity_recorded", False):
        return
    project = instance.project
    ActivityEvent.objects.create(
        team_id=project.team_id,
        actor_id=instance.created_by_id,
        verb="created",
        object_type="pipeline",
        object_name=f"{project.name} / {instance.name}"[:300],
        object_url=_pipeline_url(project, instance.name),
    )


@receiver(post_save, sender="designer.PipelineVersion", dispatch_uid="pipedeck-activity-version")
def _version_created(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    message = instance.message or ""
    if not created or raw or message.startswith(LIBRARY_MESSAGES):
        return
    pipeline = instance.pipeline
    project = pipeline.project
    ActivityEvent.objects.create(
        team_id=project.team_id,
        actor_id=instance.author_id,
        verb="imported" if message.startswith("Imported") else "changed",
        object_type="pipeline",
        object_name=f"{project.name} / {pipeline.name}"[:300],
        object_url=_pipeline_url(project, pipeline.name),
        detail=f"version {instance.number}" + (f": {message}" if message else "")[:480],
    )


@receiver(post_save, sender="designer.Run", dispatch_uid="pipedeck-activity-run")
def _run_created(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not created or raw:
        return
    names = ", ".join(instance.pipelines or []) or "all pipelines"
    ActivityEvent.objects.create(
        team_id=instance.team_id,
        actor_id=instance.created_by_id,
        verb="ran",
        object_type="run",
        object_name=f"#{instance.pk} {instance.project.name}: {names}"[:300],
        object_url=reverse("designer-run", args=[instance.pk]),
        detail=f"re-run of #{instance.rerun_of_id}" if instance.rerun_of_id else "",
    )


#: version messages of copies the library records itself (as used_template / copied)
LIBRARY_MESSAGES = ("Created from template ", "Copied from ")


def _pipeline_url(project: Any, name: str) -> str:
    return reverse(
        "designer-editor", kwargs={"team": project.team.slug, "project": project.slug, "pipeline": name}
    )
