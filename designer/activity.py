"""The team activity feed: ``record(...)`` one line per thing a person did, ``feed(team)`` to show them.

Verbs used across the app (keep to these so the feed reads well): created, changed, imported, ran,
cancelled, deleted, copied, used_template, marked_template, unmarked_template, added_member, changed_role,
removed_member, set_secret, deleted_secret, set_variable, deleted_variable.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from designer.models import ActivityEvent, Team

VERB_LABELS: dict[str, str] = {
    "created": "created",
    "changed": "changed",
    "imported": "imported",
    "ran": "ran",
    "cancelled": "cancelled",
    "deleted": "deleted",
    "copied": "copied",
    "used_template": "created from a template",
    "marked_template": "marked as a template",
    "unmarked_template": "stopped sharing as a template",
    "added_member": "added member",
    "changed_role": "changed the role of",
    "removed_member": "removed member",
    "set_secret": "set secret",
    "deleted_secret": "deleted secret",
    "set_variable": "set variable",
    "deleted_variable": "deleted variable",
    "set_run_limits": "changed the run limits of",
}


def _actor(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def record(
    team: Team,
    actor: Any,
    verb: str,
    obj: Any = None,
    *,
    object_type: str = "",
    object_name: str = "",
    url: str = "",
    detail: str = "",
) -> ActivityEvent:
    """Store one activity line; ``obj`` (a model instance) fills the type and name when given.

    Never pass a secret's value in ``detail``: the feed is shown to every member.
    """
    if obj is not None:
        object_type = object_type or type(obj).__name__.lower()
        object_name = object_name or str(getattr(obj, "name", None) or obj)
        if not url and hasattr(obj, "get_absolute_url"):
            url = obj.get_absolute_url()
    return ActivityEvent.objects.create(
        team=team,
        actor=_actor(actor),
        verb=verb,
        object_type=object_type[:40],
        object_name=object_name[:300],
        object_url=url[:500],
        detail=detail[:500],
    )


def feed(team: Team, limit: int = 50) -> QuerySet[ActivityEvent]:
    """The team's latest activity, newest first."""
    return ActivityEvent.objects.filter(team=team).select_related("actor")[:limit]


def verb_label(verb: str) -> str:
    """Words for a verb in the feed."""
    return VERB_LABELS.get(verb, verb.replace("_", " "))
