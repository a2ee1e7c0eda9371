"""Channel-layer group names and message types, in one place (consumers, executor and views use these)."""

from __future__ import annotations

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
