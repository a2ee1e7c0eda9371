"""Schedules: cron in a time zone (DST included), catch-up policies, pause/resume, the pages, and firing
exactly once across several workers and restarts (time moved by a fake clock, never by sleeping)."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from designer.runs.models import Run
from designer.teams.models import ActivityEvent
from designer.triggers import crons, schedules
from designer.triggers.models import Schedule, ScheduleFire
from designer.triggers.parameters import InvalidValues
from tests.factory import make_pipeline

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def make_schedule(project, cron: str = "0 2 * * *", tz: str = "UTC", **kw) -> Schedule:  # type: ignore[no-untyped-def]
    data = schedules.ScheduleData(name=kw.pop("name", "nightly"), cron=cron, timezone=tz, **kw)
    return schedules.save_schedule(project, data, None)


def local_times(fires: list[dt.datetime], tz: dt.tzinfo = PARIS) -> list[str]:
    return [f.astimezone(tz).isoformat() for f in fires]


# ---- cron and time zones ---------------------------------------------------------------------------------


def test_a_daily_time_that_does_not_exist_on_the_spring_change_fires_once_at_the_next_minute_that_does() -> (
    None
):
    times = crons.next_times("30 2 * * *", "Europe/Paris", at(2026, 3, 27, 12, 0), 3)
    assert local_times(times) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that night
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_daily_time_that_exists_twice_on_the_autumn_change_fires_once() -> None:
    times = crons.next_times("30 2 * * *", "Europe/Paris", at(2026, 10, 24, 12, 0), 3)
    assert local_times(times) == [
        "2026-10-25T02:30:00+02:00",  # the first of the two 02:30s
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_an_hourly_schedule_keeps_the_clock_through_both_changes() -> None:
    autumn = crons.due_between("0 * * * *", "Europe/Paris", at(2026, 10, 24, 23, 0), at(2026, 10, 25, 2, 0))
    assert local_times(autumn) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the hour that repeats: a distinct instant, fired as such
        "2026-10-25T03:00:00+01:00",
    ]
    spring = crons.due_between("0 * * * *", "Europe/Paris", at(2026, 3, 29, 0, 0), at(2026, 3, 29, 2, 0))
    assert local_times(spring) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_bad_expressions_and_zones_say_what_is_wrong() -> None:
    with pytest.raises(crons.CronProblem, match="has 5 fields"):
        crons.check("0 2 * *", "UTC")
    with pytest.raises(crons.CronProblem, match="not a valid cron expression: Bad minute"):
        crons.check("61 2 * * *", "UTC")
    with pytest.raises(crons.CronProblem, match="unknown time zone 'Mars/Olympus'"):
        crons.check("0 2 * * *", "Mars/Olympus")
    assert crons.explain("0 9 * * 1-5") == "At 09:00 on Monday through Friday"


def test_a_schedule_fires_across_the_spring_change_with_its_local_logical_date(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    fake_clock.set(at(2026, 3, 28, 12, 0))
    schedule = make_schedule(project, "30 2 * * *", "Europe/Paris")
    assert schedule.next_fire_at == at(2026, 3, 29, 1, 0)  # 03:00+02:00
    fired = schedules.tick(at(2026, 3, 29, 1, 0, 5))
    assert len(fired) == 1
    run = Run.objects.get()
    assert run.trigger == "schedule nightly" and run.logical_datetime == "2026-03-29T03:00:00+02:00"
    assert run.context()["date"] == "2026-03-29"
    schedule.refresh_from_db()
    assert schedule.next_fire_at == at(2026, 3, 30, 0, 30) and schedule.last_fire_at == at(2026, 3, 29, 1, 0)


# ---- firing and catch-up ---------------------------------------------------------------------------------


@pytest.fixture
def hourly(project, fake_clock):  # type: ignore[no-untyped-def]
    """An hourly schedule made at 00:30 (first fire time 01:00), on a project with one pipeline."""
    make_pipeline(project, "orders")
    fake_clock.set(at(2026, 11, 1, 0, 30))

    def make(catch_up: str, limit: int = 10) -> Schedule:
        return make_schedule(project, "0 * * * *", catch_up=catch_up, catch_up_limit=limit)

    return make


def fired_runs() -> list[str]:
    return [
        f.fire_at.strftime("%H:%M")
        for f in ScheduleFire.objects.filter(run__isnull=False).order_by("fire_at")
    ]


def test_on_time_the_fire_time_runs_whatever_the_policy(hourly) -> None:  # type: ignore[no-untyped-def]
    hourly("skip")
    schedules.tick(at(2026, 11, 1, 1, 0, 40))
    assert fired_runs() == ["01:00"]
    assert schedules.tick(at(2026, 11, 1, 1, 0, 41)) == []  # fired: nothing due any more


def test_catch_up_skip_runs_nothing_it_missed(hourly) -> None:  # type: ignore[no-untyped-def]
    schedule = hourly("skip")
    schedules.tick(at(2026, 11, 1, 5, 10))  # down from 00:30 to 05:10: 01:00 to 05:00 missed
    assert fired_runs() == [] and not Run.objects.exists()
    notes = set(ScheduleFire.objects.values_list("note", flat=True))
    assert notes == {"missed (catch-up: skip)"} and ScheduleFire.objects.count() == 5
    schedule.refresh_from_db()
    assert schedule.next_fire_at == at(2026, 11, 1, 6, 0)


def test_catch_up_latest_runs_the_latest_missed_time_once(hourly) -> None:  # type: ignore[no-untyped-def]
    hourly("latest")
    schedules.tick(at(2026, 11, 1, 5, 10))
    assert fired_runs() == ["05:00"] and Run.objects.count() == 1
    assert Run.objects.get().logical_datetime == "2026-11-01T05:00:00+00:00"


def test_catch_up_all_runs_the_missed_times_up_to_its_limit(hourly) -> None:  # type: ignore[no-untyped-def]
    hourly("all", limit=3)
    schedules.tick(at(2026, 11, 1, 5, 10))
    assert fired_runs() == ["03:00", "04:00", "05:00"] and Run.objects.count() == 3
    assert ScheduleFire.objects.filter(run__isnull=True, note="missed (catch-up: up to 3)").count() == 2


def test_a_worker_acting_on_an_old_view_of_a_schedule_fires_nothing_twice(hourly) -> None:  # type: ignore[no-untyped-def]
    schedule = hourly("all")
    schedules.tick(at(2026, 11, 1, 2, 0, 30))
    assert fired_runs() == ["01:00", "02:00"]
    # a worker restarted from an old state (its next fire time still 01:00) looks again
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=at(2026, 11, 1, 1, 0))
    schedules.tick(at(2026, 11, 1, 2, 0, 40))
    assert fired_runs() == ["01:00", "02:00"] and Run.objects.count() == 2


def test_a_paused_schedule_does_not_fire_and_resuming_does_not_catch_up(hourly, fake_clock) -> None:  # type: ignore[no-untyped-def]
    schedule = schedules.set_paused(hourly("all"), True, None)
    assert schedule.next_fire_at is None and schedules.next_times(schedule) == []
    assert schedules.tick(at(2026, 11, 1, 3, 30)) == []
    fake_clock.set(at(2026, 11, 1, 3, 30))
    schedule = schedules.set_paused(schedule, False, None)
    assert schedule.next_fire_at == at(2026, 11, 1, 4, 0)
    schedules.tick(at(2026, 11, 1, 4, 0, 5))
    assert fired_runs() == ["04:00"]


def test_a_fire_time_that_cannot_start_a_run_is_recorded_with_why(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "broken", spec={"type": "ETL"}, is_valid=False)
    make_schedule(project, "0 2 * * *")
    schedules.tick(at(2026, 11, 1, 2, 0, 10))
    fire = ScheduleFire.objects.get()
    assert fire.run is None and fire.note.startswith("not started: Cannot run")
    assert ActivityEvent.objects.filter(object_type="schedule", detail=fire.note).exists()


def test_schedule_values_are_checked_against_the_run_parameters(param_project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidValues, match="day: required"):
        make_schedule(param_project)
    with pytest.raises(InvalidValues, match="day: expected a date"):
        make_schedule(param_project, variables={"day": "soon"})
    schedule = make_schedule(param_project, variables={"day": "2026-01-01"})
    schedules.tick(at(2026, 11, 1, 2, 0, 10))
    run = Run.objects.get()
    assert run.variables == {"day": "2026-01-01", "limit": 10} and schedule.name == "nightly"
    assert ActivityEvent.objects.filter(verb="ran", detail="started by schedule nightly").exists()


def test_schedules_due_together_fire_in_a_few_statements_whatever_their_number(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def fire_many(count: int, minute: int) -> int:
        for i in range(count):
            make_pipeline(project, f"p{minute}-{i}")
            make_schedule(project, f"{minute} 2 * * *", name=f"s{minute}-{i}", pipeline=f"p{minute}-{i}")
        with CaptureQueriesContext(connection) as queries:
            fired = schedules.tick(at(2026, 11, 1, 2, minute, 5))
        assert len(fired) == count and all(f.run is not None for f in fired)
        return len(queries)

    assert fire_many(3, 1) == fire_many(30, 2)  # one statement per table, not one per schedule
    runs = Run.objects.filter(trigger__startswith="schedule s2-")
    assert runs.count() == 30 and all(run.pipeline_runs.count() == 1 for run in runs)
    feed = ActivityEvent.objects.filter(verb="ran", detail__startswith="started by schedule s2-")
    assert feed.count() == 30
    for fire in ScheduleFire.objects.filter(run__in=runs).select_related("schedule__pipeline", "run"):
        assert fire.run.pipelines == [fire.schedule.pipeline.name]  # each its own schedule's pipeline


def test_firing_reads_only_the_pipelines_its_runs_need(project, fake_clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from designer.runs import selection
    from tests.factory import SLEEP_SPEC

    read: list[str] = []
    real = selection._load

    def load(p, names, draft):  # type: ignore[no-untyped-def]
        read.extend(sorted(names) if names is not None else ["every pipeline"])
        return real(p, names, draft)

    monkeypatch.setattr(selection, "_load", load)
    for i in range(30):
        make_pipeline(project, f"p{i:02d}")
    make_pipeline(project, "after", spec={**SLEEP_SPEC, "needs": ["p07"]})
    make_schedule(project, name="one", pipeline="after")
    schedules.tick(at(2026, 11, 1, 2, 0, 10))
    fire = ScheduleFire.objects.get()
    assert fire.run is not None and fire.run.pipelines == ["after", "p07"]  # its upstream never succeeded
    assert read == ["after", "p07"]  # not the project's 31 pipelines


def test_a_schedule_that_cannot_run_does_not_hold_back_those_due_with_it(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "good")
    make_pipeline(project, "broken", spec={"type": "ETL"}, is_valid=False)
    make_schedule(project, name="a-good", pipeline="good")
    make_schedule(project, name="b-broken", pipeline="broken")
    make_schedule(project, name="c-all")  # the whole project, the broken pipeline included
    schedules.tick(at(2026, 11, 1, 2, 0, 10))
    fires = {f.schedule.name: f for f in ScheduleFire.objects.select_related("schedule", "run")}
    assert fires["a-good"].run is not None and fires["a-good"].run.pipelines == ["good"]
    assert fires["b-broken"].run is None and fires["b-broken"].note.startswith("not started: Cannot run")
    assert fires["c-all"].run is None and "broken" in fires["c-all"].note
    assert Schedule.objects.filter(next_fire_at=at(2026, 11, 2, 2, 0)).count() == 3


def test_a_chunk_with_one_time_fired_already_fires_the_others_once(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c"):
        make_pipeline(project, name)
        make_schedule(project, name=f"s-{name}", pipeline=name)
    schedules.tick(at(2026, 11, 1, 2, 0, 10))
    assert Run.objects.count() == 3
    # one of them acts on an old view (a restarted worker's): its 02:00 is fired already, the others' not
    ScheduleFire.objects.exclude(schedule__name="s-b").delete()
    Schedule.objects.update(next_fire_at=at(2026, 11, 1, 2, 0))
    schedules.tick(at(2026, 11, 1, 2, 0, 20))
    assert sorted(ScheduleFire.objects.values_list("schedule__name", flat=True)) == ["s-a", "s-b", "s-c"]
    assert Run.objects.count() == 5  # s-a and s-c fired again (their rows were gone); s-b did not


@pytest.mark.django_db(transaction=True)
def test_concurrent_looks_fire_each_time_once(hourly) -> None:  # type: ignore[no-untyped-def]
    from django.db import connections

    hourly("all")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def look(worker: str) -> None:
        try:
            barrier.wait(5)
            schedules.tick(at(2026, 11, 1, 3, 0, 30), worker)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=look, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert fired_runs() == ["01:00", "02:00", "03:00"] and Run.objects.count() == 3


# ---- the pages -------------------------------------------------------------------------------------------


def test_the_schedule_form_shows_the_next_five_times_and_a_reading(alice_client, project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    page = alice_client.get(
        "/p/acme/sales/-/triggers/schedules/preview/",
        {"cron": "30 2 * * *", "timezone": "Europe/Paris"},
        HTTP_HX_REQUEST="true",
    )
    html = page.content.decode()
    assert "<html" not in html and "At 02:30 every day" in html
    assert html.count("<li><time") == 5 and "2026-11-01 02:30 CET" in html
    bad = alice_client.get("/p/acme/sales/-/triggers/schedules/preview/", {"cron": "nope", "timezone": "UTC"})
    assert "has 5 fields" in bad.content.decode()


def test_editors_create_pause_and_resume_a_schedule(alice_client, project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    form = {
        "name": "nightly",
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "pipeline": "orders",
        "catch_up": "latest",
        "catch_up_limit": "10",
    }
    bad = alice_client.post("/p/acme/sales/-/triggers/schedules/new/", {**form, "cron": "0 25 * * *"})
    assert bad.status_code == 400 and "Bad hour" in bad.content.decode()
    response = alice_client.post("/p/acme/sales/-/triggers/schedules/new/", form)
    schedule = Schedule.objects.get()
    assert response.status_code == 302 and response["Location"] == schedule.get_absolute_url()
    assert schedule.pipeline is not None and schedule.next_fire_at == at(2026, 11, 1, 2, 0)
    page = alice_client.get(schedule.get_absolute_url()).content.decode()
    assert page.count("<li><time") == 5 and "At 02:00 every day" in page
    alice_client.post(f"{schedule.get_absolute_url()}pause/", {"paused": "1"})
    schedule.refresh_from_db()
    assert schedule.paused and schedule.next_fire_at is None
    alice_client.post(f"{schedule.get_absolute_url()}pause/", {"paused": "0"})
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_fire_at == at(2026, 11, 1, 2, 0)
    verbs = set(ActivityEvent.objects.filter(object_type="schedule").values_list("verb", flat=True))
    assert verbs == {"created", "paused", "resumed"}


def test_the_dashboard_lists_the_teams_schedules_with_next_and_last_run(
    alice_client, project, fake_clock
) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    make_schedule(project, "0 2 * * *")
    schedules.tick(at(2026, 11, 1, 2, 0, 5))
    run = Run.objects.get()
    part = alice_client.get("/t/acme/schedules/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in part and 'data-schedule="nightly"' in part
    assert f'href="/runs/{run.pk}/"' in part and "2026-11-02 02:00 UTC" in part


def test_a_template_pipeline_is_scheduled_and_fires_like_any_other(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    """A template runs on a schedule too: "template" only controls sharing."""
    make_pipeline(project, "orders", is_template=True)
    fake_clock.set(at(2026, 11, 1, 0, 30))
    make_schedule(project, "0 1 * * *", pipeline="orders")
    assert len(schedules.tick(at(2026, 11, 1, 1, 0, 5))) == 1
    assert Run.objects.get().pipelines == ["orders"]


class _Monotonic:
    """``time.monotonic`` of the trigger loop, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.django_db(transaction=True)
async def test_the_loop_wakes_for_the_next_fire_time_instead_of_a_tick_later(
    project, fake_clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    from designer.triggers import loop

    mono = _Monotonic()
    monkeypatch.setattr(loop, "time", mono)
    await sync_to_async(make_pipeline)(project, "orders")
    await sync_to_async(make_schedule)(project, "0 2 * * *", pipeline="orders")  # next: 02:00, 1 h on

    async def db(fn, *args):  # type: ignore[no-untyped-def]
        return await sync_to_async(fn, thread_sensitive=True)(*args)

    triggers = loop.TriggerLoop("w1", db, interval=3600)  # ticks alone would look again in an hour
    await triggers.tick()
    assert triggers._turn is not None
    await triggers._turn
    assert triggers.seconds_until_due() == pytest.approx(3600.0)

    mono.now += 3599.5
    fake_clock.advance(seconds=3599.5)
    await triggers.tick()  # neither the interval nor the fire time has come: no turn
    assert triggers._turn.done() and triggers.seconds_until_due() == pytest.approx(0.5)
    mono.now += 0.5
    fake_clock.advance(seconds=0.5)
    assert triggers.seconds_until_due() is None
    await triggers.tick()  # the fire time has come: a turn at once, though the interval has not passed
    await triggers._turn
    assert await sync_to_async(Run.objects.count)() == 1
    assert triggers.seconds_until_due() == pytest.approx(24 * 3600.0)
