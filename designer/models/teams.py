"""Teams and who belongs to them, with a role each."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    RUNNER = "runner", "Runner"
    EDITOR = "editor", "Editor"
    OWNER = "owner", "Owner"

    @staticmethod
    def rank(role: str) -> int:
        """Position of ``role`` in viewer < runner < editor < owner (-1 when unknown)."""
        order = [r.value for r in Role]
        return order.index(role) if role in order else -1

    @staticmethod
    def at_least(role: str | None, needed: str) -> bool:
        """True when ``role`` includes the rights of ``needed``."""
        return role is not None and Role.rank(role) >= Role.rank(needed) >= 0


ROLE_CHOICES = Role.choices


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Limits of the team's runs set by an owner (blank: the site's default), never above the site's maximum.
    run_cpu_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_memory_mib = models.PositiveIntegerField(null=True, blank=True)
    run_open_files = models.PositiveIntegerField(null=True, blank=True)
    run_wall_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"
