"""Admin for the designer's models."""

from __future__ import annotations

from django.contrib import admin

from designer.models import Membership, Pipeline, PipelineVersion, Project, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "concurrency", "updated_at"]
    list_filter = ["team"]


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "type", "is_valid", "updated_at"]
    list_filter = ["type", "is_valid"]


@admin.register(PipelineVersion)
class PipelineVersionAdmin(admin.ModelAdmin):
    list_display = ["pipeline", "number", "author", "message", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
