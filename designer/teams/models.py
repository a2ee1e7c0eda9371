"""Teams: who belongs to them (with a role each), and what a team shares besides its pipelines:
encrypted secrets, variables and the activity feed."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


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


#: names usable in ``${{ secrets.X }}`` / ``${{ variables.X }}``
identifier_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]*$",
    "Use letters, digits and underscores only, not starting with a digit.",
)


class Secret(models.Model):
    """A team secret, stored only as Fernet ciphertext (see designer.teams.crypto); the UI never shows it."""

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="secrets")
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

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="variables")
    project = models.ForeignKey(
        "designer.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="variable_overrides"
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

    team = models.ForeignKey("designer.Team", on_delete=models.CASCADE, related_name="activity")
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
