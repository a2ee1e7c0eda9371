"""A pipeline's draft edited by a team at once: its revisions, the log of changes (``DraftEdit``), stale
edits refused, each author's undo and redo, and the live message that tells the other editors.

Every change of a draft goes through ``pipelines.store``, which bumps ``Pipeline.revision`` and calls
``record`` here; an edit from the browser carries the revision it was made on and is refused
(``StaleEdit``) when someone else changed the draft since. Undo and redo are edits too: they apply only
while the draft is still as the undone (redone) edit left it, so they never undo a colleague's work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from designer import limits
from designer.editor.models import DraftEdit, Pipeline

log = logging.getLogger(__name__)

#: the changes kept per pipeline (older ones can no longer be undone or shown in a conflict's diff)
LOG_SIZE = 200


class StaleEdit(Exception):
    """An edit made on revision ``since`` while the draft has changed since; the message says by whom."""

    def __init__(self, message: str, since: int, authors: list[str]) -> None:
        super().__init__(message)
        self.since = since
        self.authors = authors


class NothingToDo(ValueError):
    """Undo or redo with nothing to undo or redo (the message says so)."""


def _user(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _name(edit: DraftEdit) -> str:
    return edit.author.get_username() if edit.author is not None else "someone"


def record(
    pipeline: Pipeline,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    user: Any = None,
    client: str = "",
    label: str = "",
    kind: str = DraftEdit.Kind.EDIT,
    of: DraftEdit | None = None,
) -> DraftEdit:
    """Log the change that made ``pipeline.revision`` (already bumped and saved) and tell the editors."""
    author = _user(user)
    if kind == DraftEdit.Kind.EDIT and author is not None:  # a new edit: what its author undid is gone
        DraftEdit.objects.filter(pipeline=pipeline, author=author, state=DraftEdit.State.UNDONE).update(
            state=DraftEdit.State.DROPPED
        )
    entry = DraftEdit.objects.create(
        pipeline=pipeline,
        revision=pipeline.revision,
        kind=kind,
        of=of,
        label=label[: limits.LABEL],
        before=before,
        after=after,
        author=author,
        client=client[: limits.CLIENT],
    )
    DraftEdit.objects.filter(pipeline=pipeline, revision__lte=pipeline.revision - LOG_SIZE).delete()
    announce(pipeline, entry)
    return entry


def check_revision(pipeline: Pipeline, revision: int | None, client: str = "") -> None:
    """Raise StaleEdit when the draft changed after ``revision`` (None: not checked), except by the same
    browser tab (``client``): its own edits in flight are not stale against each other."""
    if revision is None or revision >= pipeline.revision:
        return
    since = list(
        DraftEdit.objects.filter(pipeline=pipeline, revision__gt=revision)
        .select_related("author")
        .order_by("revision")
    )
    if client and len(since) == pipeline.revision - revision and all(e.client == client for e in since):
        return
    authors = list(dict.fromkeys(_name(e) for e in since)) or ["someone"]
    changes = "; ".join(e.label for e in since if e.label)[:300]
    message = (
        f"Not applied: {', '.join(authors)} changed this pipeline since you loaded it "
        f"(revision {revision} -> {pipeline.revision}{': ' + changes if changes else ''}). "
        "Here is what changed; the editor now shows the current pipeline: make your change again."
    )
    raise StaleEdit(message, revision, authors)


def changed_by(pipeline: Pipeline, since: int) -> str:
    """Who changed the draft after revision ``since``, and what (a notice for the other editors)."""
    later = list(
        DraftEdit.objects.filter(pipeline=pipeline, revision__gt=since)
        .select_related("author")
        .order_by("revision")[:20]
    )
    authors = ", ".join(dict.fromkeys(_name(e) for e in later)) or "Someone"
    changes = "; ".join(e.label for e in later if e.label)
    return f"{authors} changed this pipeline{': ' + changes if changes else ''}."[:400]


def spec_at(pipeline: Pipeline, revision: int) -> dict[str, Any] | None:
    """The draft as it was at ``revision`` (None when the log no longer holds it)."""
    if revision == pipeline.revision:
        return dict(pipeline.spec)
    after = DraftEdit.objects.filter(pipeline=pipeline, revision=revision).values_list("after", flat=True)
    if after:
        return dict(after[0])
    before = DraftEdit.objects.filter(pipeline=pipeline, revision=revision + 1).values_list(
        "before", flat=True
    )
    return dict(before[0]) if before else None


def parse_revision(value: str | None) -> int | None:
    """The revision a request names (blank or not a number: None)."""
    return int(value) if value and value.isdigit() else None


def _stack(pipeline: Pipeline, user: Any, state: str) -> DraftEdit | None:
    author = _user(user)
    if author is None:
        return None
    entries = DraftEdit.objects.filter(
        pipeline=pipeline, author=author, kind=DraftEdit.Kind.EDIT, state=state
    )
    return entries.order_by("-revision" if state == DraftEdit.State.DONE else "-undone_at").first()


def _undoable(pipeline: Pipeline, user: Any) -> DraftEdit | None:
    return _stack(pipeline, user, DraftEdit.State.DONE)


def _redoable(pipeline: Pipeline, user: Any) -> DraftEdit | None:
    return _stack(pipeline, user, DraftEdit.State.UNDONE)


@dataclass(frozen=True)
class UndoState:
    """What the Undo and Redo buttons offer ``user`` (labels; blank: nothing)."""

    undo: str = ""
    redo: str = ""


def undo_state(pipeline: Pipeline, user: Any) -> UndoState:
    """The labels of the edits ``user`` can undo and redo next (one query)."""
    author = _user(user)
    if author is None or pipeline.revision == 0:  # never changed since it was made: nothing logged
        return UndoState()
    rows = DraftEdit.objects.filter(
        pipeline=pipeline,
        author=author,
        kind=DraftEdit.Kind.EDIT,
        state__in=[DraftEdit.State.DONE, DraftEdit.State.UNDONE],
    ).values_list("state", "label", "revision", "undone_at")
    done = max((r for r in rows if r[0] == DraftEdit.State.DONE), key=lambda r: r[2], default=None)
    undone = max((r for r in rows if r[0] == DraftEdit.State.UNDONE), key=lambda r: r[3] or 0, default=None)
    return UndoState(
        (done[1] or "edit") if done else "",
        (undone[1] or "edit") if undone else "",
    )


def _changed_since(pipeline: Pipeline, entry: DraftEdit) -> str:
    later = (
        DraftEdit.objects.filter(pipeline=pipeline, revision__gt=entry.revision)
        .exclude(author=entry.author)
        .select_related("author")
        .first()
    )
    who = _name(later) if later is not None else "someone"
    return f"{who} changed the pipeline after it"


def take_undo(pipeline: Pipeline, user: Any) -> tuple[DraftEdit, dict[str, Any]]:
    """The edit ``user`` undoes next and the spec it restores; NothingToDo, or StaleEdit when the draft
    is no longer as that edit left it. The caller stores the spec (``pipelines.undo``)."""
    entry = _undoable(pipeline, user)
    if entry is None:
        raise NothingToDo("Nothing to undo: you have made no change to this pipeline's draft yet.")
    if entry.after != pipeline.spec:
        raise StaleEdit(
            f"Cannot undo '{entry.label}': {_changed_since(pipeline, entry)}, and undoing it would undo "
            "their change too.",
            entry.revision,
            [],
        )
    return entry, dict(entry.before)


def take_redo(pipeline: Pipeline, user: Any) -> tuple[DraftEdit, dict[str, Any]]:
    """The edit ``user`` redoes next and the spec it brings back (see ``take_undo``)."""
    entry = _redoable(pipeline, user)
    if entry is None:
        raise NothingToDo("Nothing to redo.")
    if entry.before != pipeline.spec:
        raise StaleEdit(
            f"Cannot redo '{entry.label}': {_changed_since(pipeline, entry)}.", entry.revision, []
        )
    return entry, dict(entry.after)


def mark(entry: DraftEdit, state: str, at: int | None) -> None:
    """Record that ``entry`` was undone (at revision ``at``) or redone."""
    entry.state = state
    entry.undone_at = at
    entry.save(update_fields=["state", "undone_at"])


def changed_message(pipeline: Pipeline, entry: DraftEdit | None) -> dict[str, Any]:
    """What the editors of ``pipeline`` receive when its draft changed (``pipeline.changed``)."""
    return {
        "type": PIPELINE_CHANGED,
        "revision": pipeline.revision,
        "by": _name(entry) if entry is not None else "someone",
        "client": entry.client if entry is not None else "",
        "label": entry.label if entry is not None else "",
    }


def announce(pipeline: Pipeline, entry: DraftEdit | None) -> None:
    """After the commit: tell the editors' websockets (``editor.consumers``) that the draft changed."""
    from designer.runs.publish import publish_sync

    message = changed_message(pipeline, entry)
    group = pipeline_group(pipeline.pk)

    def send() -> None:
        try:
            publish_sync([(group, message)])
        except RuntimeError:  # called from a thread running an event loop (a script, a test): best effort
            log.debug("not announced: %s revision %s", group, pipeline.revision)

    transaction.on_commit(send)


#: message types of a pipeline's group: its draft changed; someone opened, is on, or left its editor
PIPELINE_CHANGED = "pipeline.changed"
PIPELINE_PRESENCE = "pipeline.presence"


def pipeline_group(pipeline_id: int) -> str:
    """The channel-layer group of the editors of one pipeline."""
    return f"pipedeck.pipeline.{pipeline_id}.edits"
