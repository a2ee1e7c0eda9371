"""What every page may show besides its own context: the nav's teams, the input limits.

The one place a page's chrome reads the database. ``nav`` is lazy: only a full page that renders the nav
runs its one query (htmx partials, JSON and the error pages never do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from designer import limits as input_limits
from designer.teams import members
from designer.teams.models import Team


@dataclass(frozen=True)
class Navigation:
    """The signed-in user's teams (``(team, role)`` by name) and the team the URL names, if theirs."""

    teams: list[tuple[Team, str]]
    current: Team | None

    @property
    def runs_team(self) -> Team | None:
        """Whose runs the nav's "Runs" link opens: the URL's team, else the user's first."""
        return self.current or (self.teams[0][0] if self.teams else None)


def navigation_for(request: HttpRequest) -> Navigation:
    """The nav of ``request``'s page (one query, none for anonymous users)."""
    teams = members.user_teams(getattr(request, "user", None))
    match = getattr(request, "resolver_match", None)
    slug = (match.kwargs.get("team") if match else None) or ""
    current = next((team for team, _role in teams if team.slug == slug), None) if slug else None
    return Navigation(teams=teams, current=current)


def navigation(request: HttpRequest) -> dict[str, Any]:
    """``nav``: the teams of the nav's switcher and "Runs" link (``Navigation``), read when first used."""
    return {"nav": SimpleLazyObject(lambda: navigation_for(request))}


_LIMITS = input_limits.as_dict()


def limits(request: HttpRequest) -> dict[str, Any]:
    """``limits``: how long each kind of field may be (``designer/limits.py``), for ``maxlength``."""
    return {"limits": _LIMITS}
