"""Template helpers for teams: the nav's team switcher and the activity feed's verbs."""

from __future__ import annotations

from typing import Any

from django import template

from designer.teams import activity, members

register = template.Library()


@register.inclusion_tag("teams/_switcher.html", takes_context=True)
def team_switcher(context: dict[str, Any]) -> dict[str, Any]:
    """The signed-in user's teams; the current one comes from the URL's ``team`` or the page's ``team``."""
    request = context.get("request")
    user = getattr(request, "user", None)
    teams = members.user_teams(user)
    match = getattr(request, "resolver_match", None)
    page_team = context.get("team")
    current_slug = (match.kwargs.get("team") if match else None) or getattr(page_team, "slug", "")
    current = next((t for t, _ in teams if t.slug == current_slug), None)
    return {"teams": teams, "current": current}


@register.filter
def verb_label(verb: str) -> str:
    """Words for an activity verb."""
    return activity.verb_label(verb)
