"""Channel-layer group names and message types, in one place (consumers, executor and views use these)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from designer.runs.models import Run

#: message type delivered to consumers for one stored run event (-> ``run_event`` handler)
RUN_EVENT = "run.event"
#: message type delivered to a team's dashboard when a run is created or changes state (-> ``run_update``)
RUN_UPDATE = "run.update"
#: message type a worker receives to wake up (new run queued) or to cancel a run it holds
WORKER_WAKE = "worker.wake"
WORKER_CANCEL = "worker.cancel"

#: every worker process listens on this group (best effort: workers also poll the database)
WORKERS_GROUP = "pipedeck.workers"


def run_group(run_id: int) -> str:
    """The group of one run's live events."""
    return f"pipedeck.run.{run_id}"


def team_runs_group(team_id: int) -> str:
    """The group of a team's run list (dashboard)."""
    return f"pipedeck.team.{team_id}.runs"


def run_update_message(run: Run) -> tuple[str, dict[str, Any]]:
    """``(group, message)`` telling the run's team its current state (``run.project`` loaded): ``run``, its
    summary (the editor picks the runs of its pipeline by it), and ``html``, its dashboard row rendered once
    here with the template the dashboard page uses, for every websocket of the team."""
    from designer.runs.dashboard import run_row_html  # (imports the models: this module must not)

    return team_runs_group(run.team_id), {"type": RUN_UPDATE, "run": run.summary(), "html": run_row_html(run)}


#: how ``run_events_message`` texts begin and end (json.dumps keeps the dict's key order)
_EVENTS_HEAD = '{"type":"events","events":['
_EVENTS_TAIL = "]}"


def run_events_message(run_id: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The layer message carrying a batch of stored events (seq ascending).

    The client's JSON is encoded once here, not once per connected client: ``text`` is what consumers
    send as is when every event in it is new to their client.
    """
    return {
        "type": RUN_EVENT,
        "run": run_id,
        "first": events[0]["seq"],
        "last": events[-1]["seq"],
        "text": json.dumps({"type": "events", "events": events}, separators=(",", ":"), default=str),
    }


def merge_run_events(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any] | None:
    """One ``run_events_message`` carrying both batches when ``newer`` continues ``older``, else None.

    The in-memory layer uses this when a run's fan-out channel still holds an undelivered batch: websockets
    that fell behind then get one message instead of two (the server's cost is per message sent).
    """
    if older.get("type") != RUN_EVENT or newer.get("type") != RUN_EVENT or older["run"] != newer["run"]:
        return None
    before, after = older["text"], newer["text"]
    if (
        newer["first"] != older["last"] + 1
        or not (before.startswith(_EVENTS_HEAD) and before.endswith(_EVENTS_TAIL))
        or not (after.startswith(_EVENTS_HEAD) and after.endswith(_EVENTS_TAIL))
    ):
        return None
    text = before[: -len(_EVENTS_TAIL)] + "," + after[len(_EVENTS_HEAD) :]
    return {**older, "last": newer["last"], "text": text}
