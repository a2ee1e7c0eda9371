"""A schedule fires exactly once per fire time with three real workers looking at it, and again exactly
once after every worker was restarted across the next fire time. Time is a fake clock the test moves; the
test waits for the workers' looks (events), never for a duration."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from designer.runs.models import Run
from designer.triggers import schedules
from designer.triggers.models import ScheduleFire
from tests.factory import make_pipeline

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC


def finished_runs(count: int, timeout: float = 30) -> list[Run]:
    """The schedule's runs once ``count`` of them have finished (the workers execute them for real)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(Run.objects.filter(trigger="schedule nightly").order_by("pk"))
        if len(runs) >= count and all(r.finished for r in runs):
            return runs
        time.sleep(0.05)
    raise AssertionError(f"expected {count} finished runs, got {list(Run.objects.values('pk', 'state'))}")


def test_three_workers_and_a_restart_fire_each_time_once(project, fake_clock, looks, workers) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "orders")
    fake_clock.set(dt.datetime(2026, 11, 1, 1, 59, tzinfo=UTC))
    schedule = schedules.save_schedule(
        project, schedules.ScheduleData(name="nightly", cron="0 2 * * *", catch_up="all"), None
    )
    names = ["w1", "w2", "w3"]
    for name in names:
        workers.start(name)
    looks.wait(names, fake_clock())  # all three look before the fire time: nothing to do
    assert not ScheduleFire.objects.exists()

    first = fake_clock.advance(minutes=1, seconds=5)  # 02:00:05: due
    looks.wait(names, first, count=3)  # each worker looked at least three times since
    [run] = finished_runs(1)
    assert run.state == "succeeded" and run.logical_datetime == "2026-11-01T02:00:00+00:00"
    assert ScheduleFire.objects.filter(schedule=schedule).count() == 1

    # every worker stops before the next fire time (a deploy), the clock passes it, new workers start
    fake_clock.set(dt.datetime(2026, 11, 2, 1, 58, tzinfo=UTC))
    looks.wait(names, fake_clock())
    workers.stop_all()
    later = dt.datetime(2026, 11, 2, 2, 0, 50, tzinfo=UTC)
    fake_clock.set(later)
    restarted = ["w1-again", "w4"]
    for name in restarted:
        workers.start(name)
    looks.wait(restarted, later, count=3)
    runs = finished_runs(2)
    assert [r.logical_datetime for r in runs] == ["2026-11-01T02:00:00+00:00", "2026-11-02T02:00:00+00:00"]
    fires = list(ScheduleFire.objects.filter(schedule=schedule).order_by("fire_at"))
    assert [f.fire_at.isoformat() for f in fires] == [
        "2026-11-01T02:00:00+00:00",
        "2026-11-02T02:00:00+00:00",
    ]
    assert fires[0].worker in names and fires[1].worker in restarted
    assert all(f.run is not None for f in fires) and Run.objects.count() == 2
