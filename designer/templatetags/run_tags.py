"""Template helpers for runs: no queries here (the views pass the states, ``runs.dashboard`` reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()


def _field(step: Any, name: str) -> Any:
    return step.get(name) if isinstance(step, Mapping) else getattr(step, name, None)


@register.filter
def state_of(states: Any, step: Any) -> Any:
    """The entry of ``step`` (a step card or a ``{"phase", "id"}`` dict) in the view's ``step_states``
    (``runs.dashboard.latest_step_states``), or None."""
    if not isinstance(states, Mapping) and not hasattr(states, "get"):
        return None
    return states.get((_field(step, "phase"), _field(step, "id")))
