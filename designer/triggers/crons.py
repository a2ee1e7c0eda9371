"""Cron expressions in a time zone (``cronsim``, healthchecks.io's parser): checks, fire times, a reading.

Five fields (minute hour day month weekday), Debian cron semantics. Around a DST change the expression is
read in local time: a time that does not exist (spring forward) fires at the next minute that does, a
time that exists twice (fall back) fires once, at its first occurrence; an expression that fires every
hour or minute keeps firing by the clock (each fire time is a distinct instant, stored in UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

#: the most fire times looked at in one go (a site down for months with a cron of every minute)
MAX_SCAN = 2000


class CronProblem(ValueError):
    """An expression or time zone that cannot be used; the message says why."""


def zone(name: str) -> ZoneInfo:
    """The time zone ``name`` (IANA, e.g. Europe/Paris); CronProblem when unknown."""
    if name not in _zone_names():
        raise CronProblem(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronProblem(f"unknown time zone {name!r}") from None


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones() | {"UTC"})
    return _ZONES


def zone_names() -> list[str]:
    """Every time zone a schedule may use, sorted."""
    return sorted(_zone_names())


def check(cron: str, tz: str) -> ZoneInfo:
    """Raise CronProblem unless ``cron`` is a valid five-field expression and ``tz`` a known zone."""
    fields = cron.split()
    if len(fields) != 5:
        raise CronProblem(
            f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}: "
            "for example '0 2 * * *' is every day at 02:00"
        )
    where = zone(tz)
    try:
        CronSim(cron, dt.datetime.now(where))
    except CronSimError as exc:
        raise CronProblem(f"'{cron}' is not a valid cron expression: {exc}") from None
    return where


def after(cron: str, tz: str, moment: dt.datetime) -> Iterator[dt.datetime]:
    """The fire times strictly after ``moment``, in order, as aware datetimes in UTC."""
    for fire in CronSim(cron, moment.astimezone(zone(tz))):
        yield fire.astimezone(dt.UTC)


def next_after(cron: str, tz: str, moment: dt.datetime) -> dt.datetime:
    """The first fire time strictly after ``moment`` (UTC)."""
    return next(after(cron, tz, moment))


def next_times(cron: str, tz: str, moment: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next ``count`` fire times after ``moment``, in the schedule's time zone."""
    where = zone(tz)
    times = []
    for fire in after(cron, tz, moment):
        times.append(fire.astimezone(where))
        if len(times) == count:
            break
    return times


def due_between(
    cron: str, tz: str, first: dt.datetime, now: dt.datetime, limit: int = MAX_SCAN
) -> list[dt.datetime]:
    """The fire times in ``[first, now]`` (UTC, oldest first); at most the latest ``limit`` of them."""
    where = zone(tz)
    found: list[dt.datetime] = []
    # backwards from now: the latest ones are the ones kept when there are too many
    for fire in CronSim(cron, (now + dt.timedelta(seconds=1)).astimezone(where), reverse=True):
        moment = fire.astimezone(dt.UTC)
        if moment < first or len(found) == limit:
            break
        if moment <= now:
            found.append(moment)
    found.reverse()
    return found


def explain(cron: str) -> str:
    """The expression in words ("At 02:00 every day")."""
    try:
        return CronSim(cron, dt.datetime.now(dt.UTC)).explain()
    except (CronSimError, ValueError, IndexError, KeyError):
        return ""
