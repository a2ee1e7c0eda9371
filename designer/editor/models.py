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
