"""Template helpers for teams: the activity feed's verbs (the nav's teams come from
``designer.context_processors.navigation``)."""

from __future__ import annotations

from django import template

from designer.teams import activity

register = template.Library()


@register.filter
def verb_label(verb: str) -> str:
    """Words for an activity verb."""
    return activity.verb_label(verb)
