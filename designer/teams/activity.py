"""The team activity feed: ``record(...)`` one line per thing a person did, ``feed(team)`` to show them.

Written in one explicit way: the view (or command) that does something on a person's behalf records it,
with ``record`` or the helpers below for the objects that carry their own author. Nothing is recorded
behind the caller's back (no model signals).

Verbs used across the app (keep to these so the feed reads well): created, changed, imported, ran,
cancelled, deleted, copied, used_template, marked_template, unmarked_template, added_member, changed_role,
removed_member, invited, joined, set_secret, deleted_secret, set_variable, deleted_variable, paused, resumed,
rotated, backfilled, retried, tested, set_parameter, deleted_parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.urls import reverse

from designer.teams.models import ActivityEvent, Team

if TYPE_CHECKING:
    from designer.editor.models import Pipeline, PipelineVersion
    from designer.runs.models import Run

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
    "invited": "invited",
    "joined": "joined",
    "set_secret": "set secret",
    "deleted_secret": "deleted secret",
    "set_variable": "set variable",
    "deleted_variable": "deleted variable",
    "set_run_limits": "changed the run limits of",
    "paused": "paused",
    "resumed": "resumed",
    "rotated": "rotated the token of",
    "backfilled": "started a backfill of",
    "retried": "retried the failed dates of",
    "tested": "sent a test alert to",
    "set_parameter": "set run parameter",
    "deleted_parameter": "deleted run parameter",
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


def pipeline_created(pipeline: Pipeline) -> ActivityEvent:
    """A new pipeline, recorded for its author."""
    project = pipeline.project
    return record(
        project.team,
        pipeline.created_by,
        "created",
        object_type="pipeline",
        object_name=f"{project.name} / {pipeline.name}",
        url=pipeline.editor_url(),
    )


def version_saved(version: PipelineVersion, verb: str = "changed") -> ActivityEvent:
    """A new version of a pipeline ("changed", or "imported" from a file), recorded for its author."""
    pipeline = version.pipeline
    project = pipeline.project
    return record(
        project.team,
        version.author,
        verb,
        object_type="pipeline",
        object_name=f"{project.name} / {pipeline.name}",
        url=pipeline.editor_url(),
        detail=f"version {version.number}" + (f": {version.message}" if version.message else ""),
    )


def run_started(run: Run) -> ActivityEvent:
    """A run queued by a person."""
    names = ", ".join(run.pipelines or []) or "all pipelines"
    return record(
        run.team,
        run.created_by,
        "ran",
        object_type="run",
        object_name=f"#{run.pk} {run.project.name}: {names}",
        url=reverse("designer-run", args=[run.pk]),
        detail=f"re-run of #{run.rerun_of_id}" if run.rerun_of_id else "",
    )


def run_triggered(run: Run) -> ActivityEvent:
    """A run queued by a trigger (``run.trigger``: "schedule nightly", "webhook deploy"...), not a person."""
    return runs_triggered([run])[0]


def runs_triggered(runs: list[Run]) -> list[ActivityEvent]:
    """``run_triggered`` for several runs (a chunk of schedules firing together), in one insert."""
    events = []
    for run in runs:
        names = ", ".join(run.pipelines or []) or "all pipelines"
        events.append(
            ActivityEvent(
                team=run.team,
                verb="ran",
                object_type="run",
                object_name=f"#{run.pk} {run.project.name}: {names}"[:300],
                object_url=reverse("designer-run", args=[run.pk]),
                detail=f"started by {run.trigger}"[:500],
            )
        )
    return ActivityEvent.objects.bulk_create(events)


def trigger_changed(team: Team, actor: Any, verb: str, obj: Any, detail: str = "") -> ActivityEvent:
    """A schedule, webhook, backfill or alert destination created, changed, paused... by ``actor``."""
    kind = type(obj).__name__.lower().replace("alertdestination", "alert destination")
    project = getattr(obj, "project", None)
    name = getattr(obj, "name", None) or getattr(obj, "range_label", "") or str(obj)
    return record(
        team,
        actor,
        verb,
        obj,
        object_type=kind,
        object_name=f"{project.name} / {name}" if project is not None else name,
        detail=detail,
    )


def feed(team: Team, limit: int = 50) -> QuerySet[ActivityEvent]:
    """The team's latest activity, newest first."""
    return ActivityEvent.objects.filter(team=team).select_related("actor")[:limit]


def verb_label(verb: str) -> str:
    """Words for a verb in the feed."""
    return VERB_LABELS.get(verb, verb.replace("_", " "))
