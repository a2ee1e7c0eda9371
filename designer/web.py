"""What every view shares: load-and-authorise helpers (a non-member, or too low a role, gets 404) and the
htmx-aware request type and responses."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from designer.editor.models import Pipeline, Project
from designer.teams.models import Membership, Role, Team


class HtmxHttpRequest(HttpRequest):
    """The request of every designer view: ``request.htmx`` (django-htmx's ``HtmxMiddleware``) is the one
    way to ask whether htmx sent it (falsy otherwise; ``.target`` and friends tell more)."""

    htmx: HtmxDetails


def go_to(request: HtmxHttpRequest, url: str) -> HttpResponse:
    """To ``url``: the whole page for an htmx request (``HX-Redirect``), else a plain redirect."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def next_url(request: HttpRequest, fallback: str) -> str:
    """The form's ``next`` when it points into this site, else ``fallback`` (never an open redirect)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if wanted and allowed else fallback


def membership_for(user: Any, team: Team) -> Membership | None:
    """The user's membership of ``team``, or None (anonymous users have none)."""
    if user is None or not user.is_authenticated:
        return None
    cache: dict[int, Membership | None] = getattr(user, "_pipedeck_memberships", None) or {}
    if team.pk not in cache:
        cache[team.pk] = Membership.objects.filter(team=team, user=user).first()
        user._pipedeck_memberships = cache
    return cache[team.pk]


def can(user: Any, team: Team, role: str = Role.VIEWER) -> bool:
    """True when ``user`` holds at least ``role`` in ``team``."""
    membership = membership_for(user, team)
    return membership is not None and Role.at_least(membership.role, role)


def get_team_for(request: HttpRequest, slug: str, role: str = Role.VIEWER) -> Team:
    """The team ``slug`` if the request's user holds at least ``role`` in it, else Http404."""
    team = Team.objects.filter(slug=slug).first()
    if team is None or not can(request.user, team, role):
        raise Http404("No such team")
    return team


def get_project_for(
    request: HttpRequest, team_slug: str, project_slug: str, role: str = Role.VIEWER
) -> Project:
    """The project, authorised through its team (Http404 otherwise)."""
    team = get_team_for(request, team_slug, role)
    project = Project.objects.filter(team=team, slug=project_slug).select_related("team").first()
    if project is None:
        raise Http404("No such project")
    return project


def get_pipeline_for(
    request: HttpRequest, team_slug: str, project_slug: str, name: str, role: str = Role.VIEWER
) -> Pipeline:
    """The pipeline ``name`` of the project, authorised through its team (Http404 otherwise)."""
    pipeline = (
        Pipeline.objects.filter(project__team__slug=team_slug, project__slug=project_slug, name=name)
        .select_related("project__team")
        .first()
    )
    # Same answer for "no such pipeline" and "not yours": a non-member learns nothing.
    if pipeline is None or not can(request.user, pipeline.project.team, role):
        raise Http404("No such pipeline")
    return pipeline
