"""Backfills: a schedule run over a range of past dates, at most ``concurrency`` runs at once.

Each date of the range on which the schedule's cron fires gets one ``BackfillDate``; its run's logical
date (``${{ run.date }}``) is that day's first fire time. Workers advance backfills as they tick: under a
lock on the backfill row they count its unfinished runs and start the next dates up to its concurrency,
so two workers never start the same date nor exceed it. Failed dates can be retried together.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from designer.runs.launch import RunRefused
from designer.runs.models import FINISHED_STATES, Run
from designer.teams import activity
from designer.triggers import crons
from designer.triggers.models import Backfill, BackfillDate, Schedule
from designer.triggers.starting import start
from orchestrator import Status

log = logging.getLogger(__name__)

#: states a retry starts again (a refused date has no run and a note)
RETRIED = (Status.FAILED, Status.CANCELLED)


class BackfillProblem(ValueError):
    """A backfill that cannot start; the message says why."""


def plan(schedule: Schedule, start_day: dt.date, end_day: dt.date) -> list[tuple[dt.date, dt.datetime]]:
    """(day, its first fire time, in the schedule's zone) for each day of the range the cron fires on."""
    if end_day < start_day:
        raise BackfillProblem("The end date is before the start date.")
    limit = settings.PIPEDECK_BACKFILL_MAX_DATES
    if (end_day - start_day).days + 1 > limit:
        raise BackfillProblem(f"A backfill covers at most {limit} days (PIPEDECK_BACKFILL_MAX_DATES).")
    where = crons.zone(schedule.timezone)
    begin = dt.datetime.combine(start_day, dt.time(), where) - dt.timedelta(seconds=1)
    days: list[tuple[dt.date, dt.datetime]] = []
    for fire in crons.after(schedule.cron, schedule.timezone, begin):
        local = fire.astimezone(where)
        if local.date() > end_day:
            break
        if not days or days[-1][0] != local.date():
            days.append((local.date(), local))
    if not days:
        raise BackfillProblem(f"The schedule's cron '{schedule.cron}' fires on no day of this range.")
    return days


@transaction.atomic
def start_backfill(
    schedule: Schedule, start_day: dt.date, end_day: dt.date, concurrency: int, user: Any
) -> Backfill:
    """Plan the backfill and start its first dates; BackfillProblem says why it cannot."""
    if not 1 <= concurrency <= 100:
        raise BackfillProblem("Concurrency is between 1 and 100 runs at once.")
    days = plan(schedule, start_day, end_day)
    backfill = Backfill.objects.create(
        team=schedule.team,
        project=schedule.project,
        schedule=schedule,
        start=start_day,
        end=end_day,
        concurrency=concurrency,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    BackfillDate.objects.bulk_create(
        BackfillDate(backfill=backfill, day=day, logical=moment.isoformat()) for day, moment in days
    )
    activity.trigger_changed(
        schedule.team,
        user,
        "backfilled",
        schedule,
        f"{backfill.range_label}, {len(days)} dates, {concurrency} at once",
    )
    advance(backfill.pk)
    return backfill


def advance(backfill_id: int) -> int:
    """Start the backfill's next dates up to its concurrency; how many started."""
    with transaction.atomic():
        backfill = (
            Backfill.objects.select_for_update(of=("self",))
            .select_related("schedule__project__team", "schedule__pipeline")
            .filter(pk=backfill_id, done=False)
            .first()
        )
        if backfill is None:
            return 0
        dates = list(backfill.dates.select_related("run").order_by("day"))
        active = sum(1 for d in dates if d.run is not None and d.run.state not in FINISHED_STATES)
        waiting = [d for d in dates if d.run_id is None and not d.note]
        if not waiting and active == 0:
            backfill.done = True
            backfill.save(update_fields=["done"])
            return 0
        started = 0
        schedule = backfill.schedule
        for date in waiting[: max(0, backfill.concurrency - active)]:
            date.attempts += 1
            try:
                with transaction.atomic():
                    date.run = start(
                        schedule.project,
                        schedule.pipeline,
                        schedule.variables,
                        trigger=backfill.label,
                        logical=dt.datetime.fromisoformat(date.logical),
                    )
            except RunRefused as exc:
                date.note = f"not started: {exc}"[:500]
            else:
                started += 1
            date.save(update_fields=["run", "attempts", "note"])
    return started


def advance_all() -> int:
    """Advance every unfinished backfill; how many runs started."""
    started = 0
    for backfill_id in Backfill.objects.filter(done=False).values_list("pk", flat=True):
        try:
            started += advance(backfill_id)
        except Exception:
            log.exception("backfill %s: advancing failed", backfill_id)
    return started


@transaction.atomic
def retry_failed(backfill: Backfill, user: Any) -> int:
    """Put the failed, cancelled and refused dates back in line (new runs, current pipelines); how many."""
    failed = [
        d.pk
        for d in backfill.dates.select_related("run")
        if (d.run is not None and d.run.state in RETRIED) or (d.run_id is None and d.note)
    ]
    if not failed:
        return 0
    BackfillDate.objects.filter(pk__in=failed).update(run=None, note="")
    Backfill.objects.filter(pk=backfill.pk).update(done=False)
    activity.trigger_changed(backfill.team, user, "retried", backfill, f"{len(failed)} date(s)")
    transaction.on_commit(lambda: advance(backfill.pk))
    return len(failed)


def grid(backfill: Backfill) -> list[dict[str, Any]]:
    """Each date with its state and run, for the page's grid."""
    rows = []
    for date in backfill.dates.select_related("run"):
        rows.append(
            {
                "day": date.day,
                "state": date.state,
                "run": date.run,
                "attempts": date.attempts,
                "note": date.note,
            }
        )
    return rows


def counts(backfill: Backfill) -> dict[str, int]:
    """How many dates are in each state."""
    tally: dict[str, int] = {}
    for row in grid(backfill):
        tally[row["state"]] = tally.get(row["state"], 0) + 1
    return tally


def latest_runs(backfill: Backfill) -> list[Run]:
    return [d.run for d in backfill.dates.select_related("run") if d.run is not None]
