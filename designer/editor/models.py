"""Projects, their pipelines (the spec as JSON) and the immutable versions of each pipeline."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse


class Project(models.Model):
    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    concurrency = models.PositiveIntegerField(default=2)
    #: the project file's ``variables:`` document, kept for the export round trip
    variables = models.JSONField(default=dict, blank=True)
    #: the project file's ``secrets:`` declarations ({name: {plugin, args}}), never values
    secrets = models.JSONField(default=dict, blank=True)
    #: runs keep each step's table as Parquet, so that a failed run can resume (designer/runs/outputs.py)
    keep_outputs = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "slug"], name="unique_project_slug")]

    def __str__(self) -> str:
        return self.name


class Pipeline(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(
        max_length=100, help_text="The pipeline's key in the project YAML (an identifier)"
    )
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    type = models.CharField(max_length=8, default="ETL")
    #: PipelineSpec.model_dump(mode="json"); may be a draft that does not validate
    spec = models.JSONField(default=dict)
    is_valid = models.BooleanField(default=False)
    errors = models.JSONField(default=list, blank=True)
    is_template = models.BooleanField(default=False)
    #: the draft's revision: +1 on every change of ``spec`` (an edit made on an older one is refused)
    revision = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_pipeline_name")]

    def __str__(self) -> str:
        return self.name

    def editor_url(self) -> str:
        """The pipeline's page in the editor."""
        project = self.project
        return reverse(
            "designer-editor",
            kwargs={"team": project.team.slug, "project": project.slug, "pipeline": self.name},
        )

    @property
    def needs(self) -> list[str]:
        """Names of the pipelines this one runs after."""
        needs: Any = self.spec.get("needs") or []
        return [needs] if isinstance(needs, str) else list(needs)

    def latest_version(self) -> PipelineVersion | None:
        """The newest saved version, or None."""
        return self.versions.order_by("-number").first()

    def has_unsaved_changes(self, latest: PipelineVersion | None = None) -> bool:
        """True when the draft differs from the newest saved version (or none was saved)."""
        latest = latest if latest is not None else self.latest_version()
        return latest is None or latest.spec != self.spec


class PipelineVersion(models.Model):
    """An immutable snapshot of a pipeline's spec: runs use these, history lists them."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.pipeline} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Create only: a version never changes once written."""
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ValueError("a PipelineVersion is immutable; create a new version instead")
        super().save(*args, **kwargs)


class DraftEdit(models.Model):
    """One change of a pipeline's draft (revision ``revision``): what it was before and after, who made
    it from which browser tab. The log answers "what changed since revision N" for a refused stale edit,
    and holds each author's undo and redo stacks."""

    class Kind(models.TextChoices):
        EDIT = "edit", "edit"
        UNDO = "undo", "undo"
        REDO = "redo", "redo"

    class State(models.TextChoices):
        DONE = "done", "done"  # an edit its author can undo
        UNDONE = "undone", "undone"  # undone: its author can redo it
        DROPPED = "dropped", "dropped"  # undone, then another edit came: nothing to redo

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="draft_edits")
    revision = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.EDIT)
    state = models.CharField(max_length=8, choices=State.choices, default=State.DONE)
    #: for undo and redo: the edit they undid or redid
    of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: the revision at which it was undone (the newest undone edit is redone first)
    undone_at = models.PositiveIntegerField(null=True, blank=True)
    label = models.CharField(max_length=200, blank=True)
    before = models.JSONField()
    after = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: the browser tab that made it (its own later edits are not stale against it)
    client = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pipeline", "revision"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "revision"], name="unique_draft_revision")]

    def __str__(self) -> str:
        return f"{self.pipeline_id} r{self.revision} {self.kind} {self.label}"
