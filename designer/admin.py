"""Admin for the designer's models."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from designer.accounts.models import Invitation
from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.teams.models import Membership, Team


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin[Project]):
    list_display = ["name", "team", "concurrency", "updated_at"]
    list_filter = ["team"]


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin[Pipeline]):
    list_display = ["name", "project", "type", "is_valid", "updated_at"]
    list_filter = ["type", "is_valid"]


@admin.register(PipelineVersion)
class PipelineVersionAdmin(admin.ModelAdmin[PipelineVersion]):
    list_display = ["pipeline", "number", "author", "message", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: PipelineVersion | None = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = [
        "email",
        "team",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["team", "role"]
    readonly_fields = ["token_hash", "accepted_at", "accepted_by"]
