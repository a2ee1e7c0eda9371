"""Team A's triggers for the authorisation matrix (tests/teams/test_authz_matrix.py): a run parameter, a
schedule, a backfill, a webhook with a known token and an alert destination; their URL arguments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from designer.triggers import alerts, backfills, schedules, webhooks
from designer.triggers.parameters import set_parameter

#: the token of team A's webhook in the matrix
HOOK_TOKEN = "matrix-webhook-token-0123456789abcdef"


def make_objects(crew: Any) -> dict[str, Any]:
    """Create them; the URL kwargs that name them."""
    project = crew.project
    set_parameter(project, "TOKEN", "string")
    schedule = schedules.save_schedule(
        project, schedules.ScheduleData(name="nightly", cron="0 2 * * *"), None
    )
    backfill = backfills.start_backfill(schedule, dt.date(2026, 10, 1), dt.date(2026, 10, 2), 1, None)
    webhook, _, _ = webhooks.create_webhook(project, "deploy", token=HOOK_TOKEN)
    destination = alerts.add_destination(project, name="ops", kind="email", target="ops@acme.test")
    return {
        "schedule_id": schedule.pk,
        "backfill_id": backfill.pk,
        "webhook_id": webhook.pk,
        "destination_id": destination.pk,
        "hook": webhook.hook_id,
    }
