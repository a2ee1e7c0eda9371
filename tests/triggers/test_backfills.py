"""Backfills: a schedule over past dates at a chosen concurrency, the live grid, retrying failed dates."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from designer.runs.models import Run
from designer.teams.models import ActivityEvent
from designer.triggers import backfills, schedules
from designer.triggers.models import Backfill, BackfillDate, range_label
from tests.factory import make_pipeline

NOV = [dt.date(2026, 11, d) for d in range(1, 31)]
QUICK = {
    "type": "ETL",
    "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": 0.05}}]},
        "load": {
            "steps": [{"id": "sink", "plugin": "csv_load", "args": {"path": "out/${{ run.date }}.csv"}}]
        },
    },
}


def nightly(project, cron: str = "0 2 * * *", tz: str = "Europe/Paris", **kw):  # type: ignore[no-untyped-def]
    return schedules.save_schedule(
        project, schedules.ScheduleData(name="nightly", cron=cron, timezone=tz, **kw), None
    )


def max_overlap(runs: list[Run]) -> int:
    """The most runs that were queued or running at the same moment."""
    edges = sorted(
        [(r.created_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs], key=lambda e: (e[0], e[1])
    )
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_the_range_label_says_only_what_changes() -> None:
    assert range_label(NOV[0], NOV[-1]) == "2026-11-01..30"
    assert range_label(dt.date(2026, 11, 25), dt.date(2026, 12, 5)) == "2026-11-25..12-05"
    assert range_label(dt.date(2026, 12, 30), dt.date(2027, 1, 2)) == "2026-12-30..2027-01-02"


def test_a_backfill_has_one_date_per_day_the_cron_fires_at_that_days_fire_time(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    weekly = nightly(project, "30 2 * * 1")  # Mondays at 02:30, Paris
    days = backfills.plan(weekly, NOV[0], NOV[-1])
    assert [d.isoformat() for d, _ in days] == [
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
        "2026-11-30",
    ]
    assert days[0][1].isoformat() == "2026-11-02T02:30:00+01:00"
    with pytest.raises(backfills.BackfillProblem, match="before the start"):
        backfills.plan(weekly, NOV[5], NOV[0])
    with pytest.raises(backfills.BackfillProblem, match="fires on no day"):
        backfills.plan(weekly, NOV[2], NOV[4])


@pytest.mark.django_db(transaction=True)
def test_thirty_dates_at_concurrency_five_end_with_thirty_runs(
    project, fake_clock, workers, settings
) -> None:  # type: ignore[no-untyped-def]
    from designer.runs.isolation import team_data_root

    settings.PIPEDECK_TRIGGERS_TICK = 0.0
    make_pipeline(project, "orders", spec=QUICK)
    schedule = nightly(project)
    workers.start("w1", concurrency=8)
    backfill = backfills.start_backfill(schedule, NOV[0], NOV[-1], 5, None)
    deadline = time.monotonic() + 60
    while not Backfill.objects.get(pk=backfill.pk).done:
        assert time.monotonic() < deadline, backfills.counts(backfill)
        time.sleep(0.05)
    runs = list(Run.objects.filter(trigger="backfill 2026-11-01..30"))
    assert len(runs) == 30 and {r.state for r in runs} == {"succeeded"}
    assert sorted(r.context()["date"] for r in runs) == [d.isoformat() for d in NOV]
    assert max_overlap(runs) <= 5
    written = sorted(p.name for p in (team_data_root(project.team) / "out").iterdir())
    assert written == [f"{d.isoformat()}.csv" for d in NOV]  # each run wrote its own ${{ run.date }}
    assert BackfillDate.objects.filter(backfill=backfill, attempts=1).count() == 30


def test_failed_dates_are_retried_together(
    alice_client, project, fake_clock, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    schedule = nightly(project)
    backfill = backfills.start_backfill(schedule, NOV[0], NOV[3], 2, None)
    assert Run.objects.count() == 2  # two at once; the others wait
    Run.objects.update(state="failed", finished_at=timezone.now())
    assert backfills.advance(backfill.pk) == 2
    Run.objects.filter(state="queued").update(state="succeeded", finished_at=timezone.now())
    assert backfills.advance(backfill.pk) == 0
    backfill.refresh_from_db()
    assert backfill.done and backfills.counts(backfill) == {"failed": 2, "succeeded": 2}

    page = alice_client.get(backfill.get_absolute_url()).content.decode()
    assert page.count('class="date-cell') == 4 and 'id="backfill-retry"' in page and "hx-trigger" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"{backfill.get_absolute_url()}retry/")
    assert response.status_code == 302
    backfill.refresh_from_db()
    assert not backfill.done and backfills.counts(backfill) == {"queued": 2, "succeeded": 2}
    assert BackfillDate.objects.filter(attempts=2).count() == 2 and Run.objects.count() == 6
    grid = alice_client.get(backfill.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in grid and 'hx-trigger="every 2s"' in grid  # the grid follows live until done
    assert ActivityEvent.objects.filter(verb="retried", detail="2 date(s)").exists()


def test_the_backfill_form_starts_one_and_refuses_a_bad_range(alice_client, project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    schedule = nightly(project)
    url = f"{schedule.get_absolute_url()}backfill/"
    bad = alice_client.post(url, {"start": "2026-11-05", "end": "2026-11-01", "concurrency": "2"})
    assert bad.status_code == 400 and "before the start date" in bad.content.decode()
    good = alice_client.post(url, {"start": "2026-11-01", "end": "2026-11-03", "concurrency": "3"})
    backfill = Backfill.objects.get()
    assert good.status_code == 302 and good["Location"] == backfill.get_absolute_url()
    assert Run.objects.filter(trigger="backfill 2026-11-01..03").count() == 3
