"""Schedules: saving one (cron, time zone, values, catch-up policy), pausing it, and firing the due ones.

Exactly once: every fire time a worker acts on gets a ``ScheduleFire`` row whose (schedule, fire_at) is
unique. The worker inserts the row and starts the run in one transaction; a worker that loses the race
gets an IntegrityError on the insert and skips that time. Restarts change nothing: the rows are in the
database, and what a worker missed while none ran is handled by the schedule's catch-up policy.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min, OuterRef, QuerySet, Subquery

from designer.editor.models import Pipeline, Project
from designer.runs import launch
from designer.runs.launch import RunRefused
from designer.runs.models import Run
from designer.teams import activity
from designer.triggers import clock, crons
from designer.triggers.models import CatchUp, Schedule, ScheduleFire
from designer.triggers.parameters import check_run_values

log = logging.getLogger(__name__)

#: schedules fired per database call of a worker's turn (its runs are claimed in between)
CHUNK = 50


class ScheduleProblem(ValueError):
    """A schedule that cannot be saved: ``field`` names the form field, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ScheduleData:
    """What the schedule form holds."""

    name: str
    cron: str
    timezone: str = "UTC"
    pipeline: str = ""
    variables: Mapping[str, Any] | None = None
    catch_up: str = CatchUp.LATEST
    catch_up_limit: int = 10


def _checked(
    project: Project, data: ScheduleData, schedule: Schedule | None
) -> tuple[Pipeline | None, dict[str, Any]]:
    from django.utils.text import slugify

    if not data.name or slugify(data.name) != data.name:
        raise ScheduleProblem(
            "name", "Use a short name of lower-case letters, digits and '-' (e.g. nightly)."
        )
    taken = Schedule.objects.filter(project=project, name=data.name)
    if schedule is not None:
        taken = taken.exclude(pk=schedule.pk)
    if taken.exists():
        raise ScheduleProblem("name", f"The project already has a schedule named {data.name}.")
    try:
        crons.check(data.cron.strip(), data.timezone)
    except crons.CronProblem as exc:
        field = "timezone" if "time zone" in str(exc) else "cron"
        raise ScheduleProblem(field, str(exc)) from None
    if data.catch_up not in CatchUp.values:
        raise ScheduleProblem("catch_up", "Choose what to do with missed times.")
    if not 1 <= data.catch_up_limit <= crons.MAX_SCAN:
        raise ScheduleProblem("catch_up_limit", f"The limit is between 1 and {crons.MAX_SCAN}.")
    pipeline = None
    if data.pipeline:
        pipeline = Pipeline.objects.filter(project=project, name=data.pipeline).first()
        if pipeline is None:
            raise ScheduleProblem("pipeline", f"No pipeline named {data.pipeline} in this project.")
    values = dict(data.variables or {})
    check_run_values(project, values)  # InvalidValues: the form shows it next to the fields
    return pipeline, values


@transaction.atomic
def save_schedule(
    project: Project, data: ScheduleData, user: Any, schedule: Schedule | None = None
) -> Schedule:
    """Create (``schedule`` None) or change a schedule; its next fire time counts from now.

    Raises ScheduleProblem, or InvalidValues for its parameter values."""
    pipeline, values = _checked(project, data, schedule)
    created = schedule is None
    if schedule is None:
        schedule = Schedule(team=project.team, project=project, created_by=_person(user))
    schedule.name = data.name
    schedule.cron = " ".join(data.cron.split())
    schedule.timezone = data.timezone
    schedule.pipeline = pipeline
    schedule.variables = values
    schedule.catch_up = data.catch_up
    schedule.catch_up_limit = data.catch_up_limit
    schedule.next_fire_at = (
        None if schedule.paused else crons.next_after(schedule.cron, schedule.timezone, clock.now())
    )
    schedule.save()
    activity.trigger_changed(project.team, user, "created" if created else "changed", schedule, schedule.cron)
    return schedule


def set_paused(schedule: Schedule, paused: bool, user: Any) -> Schedule:
    """Pause (no fire time until resumed) or resume (the next fire time from now: a paused time is not
    caught up)."""
    schedule.paused = paused
    schedule.next_fire_at = (
        None if paused else crons.next_after(schedule.cron, schedule.timezone, clock.now())
    )
    schedule.save(update_fields=["paused", "next_fire_at", "updated_at"])
    activity.trigger_changed(schedule.team, user, "paused" if paused else "resumed", schedule)
    return schedule


def delete_schedule(schedule: Schedule, user: Any) -> None:
    activity.trigger_changed(schedule.team, user, "deleted", schedule)
    schedule.delete()


def _person(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# ---- firing ------------------------------------------------------------------------------------------------


def tick(now: dt.datetime | None = None, worker: str = "", limit: int | None = None) -> list[ScheduleFire]:
    """Fire the due schedules (``limit`` of them at most), each once per due fire time by its catch-up
    policy; what was fired.

    They fire ``CHUNK`` at a time, each chunk in one transaction: its schedules are locked as they are
    read and those another worker holds are skipped (PostgreSQL), so workers looking at once share the
    due schedules; the chunk's fires, runs and their rows are inserted one statement per table. SQLite has
    one writer at a time anyway: there, the second worker finds them moved to their next fire time. If a
    chunk cannot fire together (a schedule fired meanwhile by a worker that did not lock, a broken
    schedule), its schedules fire one by one, each in its own savepoint; one whose firing fails is logged
    and left for the next tick.
    """
    now = now or clock.now()
    due = (
        Schedule.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("project__team", "pipeline")
        .filter(paused=False, next_fire_at__lte=now)
        .order_by("next_fire_at", "pk")
    )
    fired: list[ScheduleFire] = []
    tried: list[int] = []
    while limit is None or len(tried) < limit:
        size = CHUNK if limit is None else min(CHUNK, limit - len(tried))
        with transaction.atomic():
            chunk = list(due.exclude(pk__in=tried)[:size])
            if not chunk:
                break
            tried += [schedule.pk for schedule in chunk]
            try:
                with transaction.atomic():  # a savepoint: on failure, nothing of the chunk is kept
                    fired += _fire_chunk(chunk, now, worker)
            except Exception:
                log.info("schedules %s: firing them together failed, one at a time", tried[-len(chunk) :])
                fired += _fire_each([schedule.pk for schedule in chunk], due, now, worker)
    return fired


def _fire_each(pks: list[int], due: QuerySet[Schedule], now: dt.datetime, worker: str) -> list[ScheduleFire]:
    fired: list[ScheduleFire] = []
    for schedule in due.filter(pk__in=pks):  # read again: the failed chunk may have changed them
        try:
            with transaction.atomic():  # a savepoint: a broken schedule leaves nothing half-fired
                fired += _fire(schedule, now, worker)
        except Exception:
            log.exception("schedule %s: firing failed", schedule.pk)
    return fired


def next_due() -> dt.datetime | None:
    """When the next unpaused schedule fires (None: none will)."""
    found: dt.datetime | None = Schedule.objects.filter(paused=False).aggregate(first=Min("next_fire_at"))[
        "first"
    ]
    return found


def _choose(schedule: Schedule, due: list[dt.datetime], now: dt.datetime) -> tuple[list[dt.datetime], str]:
    """The fire times to run now (the rest are skipped) and why the others are skipped."""
    grace = dt.timedelta(seconds=settings.PIPEDECK_SCHEDULE_GRACE)
    on_time = [t for t in due if t >= now - grace]
    missed = [t for t in due if t < now - grace]
    if not missed:
        return on_time, ""
    if schedule.catch_up == CatchUp.SKIP:
        return on_time, "missed (catch-up: skip)"
    if schedule.catch_up == CatchUp.LATEST:
        return (on_time or missed[-1:]), "missed (catch-up: the latest only)"
    kept = missed[-schedule.catch_up_limit :] if schedule.catch_up_limit else []
    return kept + on_time, f"missed (catch-up: up to {schedule.catch_up_limit})"


def _moves(schedule: Schedule, now: dt.datetime) -> tuple[list[tuple[dt.datetime, bool]], str]:
    """The (locked, due) schedule's due times, each with whether it runs, and why the others are skipped;
    ``schedule`` moved to its next fire time (not saved)."""
    assert schedule.next_fire_at is not None  # due: it has one
    due = crons.due_between(schedule.cron, schedule.timezone, schedule.next_fire_at, now)
    chosen, why_skipped = _choose(schedule, due, now)
    if chosen:
        schedule.last_fire_at = max(chosen)
    schedule.next_fire_at = crons.next_after(schedule.cron, schedule.timezone, now)
    return [(moment, moment in chosen) for moment in due], why_skipped


def _fire_chunk(chunk: list[Schedule], now: dt.datetime, worker: str) -> list[ScheduleFire]:
    """Fire the (locked) schedules' due times together: their runs queued by ``launch.start_runs``, one
    insert for the fires, one update for the schedules. Raises IntegrityError when one of the times was
    fired already (the caller then fires them one by one)."""
    planned = [(schedule, *_moves(schedule, now)) for schedule in chunk]
    fires = [
        (schedule, ScheduleFire(schedule=schedule, fire_at=moment, worker=worker[:200], note=why), run_it)
        for schedule, moments, why in planned
        for moment, run_it in moments
    ]
    started = _start([(schedule, fire) for schedule, fire, run_it in fires if run_it])
    ScheduleFire.objects.bulk_create([fire for _, fire, _ in fires])  # IntegrityError: fired already
    activity.runs_triggered(started)
    Schedule.objects.bulk_update(chunk, ["next_fire_at", "last_fire_at"])
    return [fire for _, fire, _ in fires]


def _start(fires: list[tuple[Schedule, ScheduleFire]]) -> list[Run]:
    """Queue the run of each (schedule, fire), the runs of one project together (``launch.start_runs``);
    the runs queued. A fire gets its run, or a note saying why none started (also in the activity feed)."""
    by_project: dict[int, list[tuple[Schedule, ScheduleFire]]] = {}
    for schedule, fire in fires:
        by_project.setdefault(schedule.project_id, []).append((schedule, fire))
    started: list[Run] = []
    for group in by_project.values():
        requests = [
            launch.RunRequest(
                (schedule.pipeline.name,) if schedule.pipeline is not None else (),
                schedule.variables,
                trigger=schedule.label,
                logical_datetime=fire.fire_at.astimezone(crons.zone(schedule.timezone)).isoformat(),
            )
            for schedule, fire in group
        ]
        outcomes = launch.start_runs(group[0][0].project, requests)
        for (schedule, fire), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, RunRefused):
                fire.note = f"not started: {outcome}"[:500]
                activity.trigger_changed(schedule.team, None, "ran", schedule, fire.note)
            else:
                fire.run, fire.note = outcome, ""
                started.append(outcome)
    return started


def _fire(schedule: Schedule, now: dt.datetime, worker: str) -> list[ScheduleFire]:
    """Fire the (locked) schedule's due times one by one and move it to its next fire time."""
    moments, why_skipped = _moves(schedule, now)
    fired = []
    for moment, run_it in moments:
        fire = _fire_once(schedule, moment, worker, run_it=run_it, skipped=why_skipped)
        if fire is not None:
            fired.append(fire)
    schedule.save(update_fields=["next_fire_at", "last_fire_at"])
    return fired


def _fire_once(
    schedule: Schedule, moment: dt.datetime, worker: str, *, run_it: bool, skipped: str
) -> ScheduleFire | None:
    try:
        with transaction.atomic():  # a savepoint: the insert that loses the race fails alone
            fire = ScheduleFire.objects.create(
                schedule=schedule, fire_at=moment, worker=worker[:200], note="" if run_it else skipped
            )
    except IntegrityError:
        return None  # fired already (another worker, or this one before a restart)
    if run_it:
        with transaction.atomic():
            activity.runs_triggered(_start([(schedule, fire)]))
        fire.save(update_fields=["run", "note"])
    return fire


# ---- what the pages show ---------------------------------------------------------------------------------


def next_times(schedule: Schedule, count: int = 5) -> list[dt.datetime]:
    """The next ``count`` fire times in the schedule's time zone (none while paused)."""
    if schedule.paused:
        return []
    return crons.next_times(schedule.cron, schedule.timezone, clock.now(), count)


def last_fires(schedule: Schedule, count: int = 10) -> list[ScheduleFire]:
    return list(schedule.fires.select_related("run")[:count])


def schedule_rows(schedules: QuerySet[Schedule]) -> list[dict[str, Any]]:
    """Each schedule with its reading, its next fire time and its last run (the lists show them)."""
    latest = ScheduleFire.objects.filter(schedule=OuterRef("pk"), run__isnull=False).order_by("-fire_at")
    rows = list(
        schedules.select_related("project", "pipeline").annotate(
            last_run_id=Subquery(latest.values("run_id")[:1])
        )
    )
    runs = Run.objects.in_bulk([row.last_run_id for row in rows if row.last_run_id])
    return [
        {
            "schedule": schedule,
            "reading": crons.explain(schedule.cron),
            "next": schedule.next_fire_at.astimezone(crons.zone(schedule.timezone))
            if schedule.next_fire_at
            else None,
            "last_run": runs.get(schedule.last_run_id),
        }
        for schedule in rows
    ]


def team_schedules(team: Any) -> list[dict[str, Any]]:
    """Every schedule of the team (the dashboard lists them with their next and last run)."""
    return schedule_rows(Schedule.objects.filter(team=team).order_by("project__name", "name"))


def project_schedules(project: Project) -> list[dict[str, Any]]:
    return schedule_rows(Schedule.objects.filter(project=project).order_by("name"))
