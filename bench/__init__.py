"""Benchmarks run by ``make bench`` (``python -m bench``): each module's ``run(quick)`` returns rows.

Every row holds all the rounds' figures as best and median, what they are compared with (pipeline-flow,
``psql \\copy``, an ideal, a floor measured in the same rounds), the goal and whether the median met it.
Rounds are interleaved (ours, theirs, floor, ours, theirs, floor...), so a busy machine slows both
sides alike; a workload that does not produce the expected result raises instead of printing a figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class WrongResult(AssertionError):
    """A workload's output differs from what it should be (rows or checksum): its figures mean nothing."""


@dataclass(frozen=True)
class BenchRow:
    """One measured figure: Pipedeck's best and median, beside what it is compared with, and the goal."""

    workload: str
    unit: str
    best: float
    median: float
    #: what the figures are compared with ("pipeline-flow 1.0.8", "psql \\copy", "ideal"...)
    versus: str = ""
    versus_best: float | None = None
    versus_median: float | None = None
    #: the goal in words; ``passed`` says whether the median met it (None: shown for information)
    goal: str = ""
    passed: bool | None = None
    #: why a comparison is missing, or what else to know about the row
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Median over the compared median (as it is: a negative figure gives a negative ratio)."""
        if self.versus_median is None:
            return None
        return self.median / self.versus_median if self.versus_median else float("inf")


def best_median(values: Sequence[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def against(
    workload: str,
    unit: str,
    ours: Sequence[float],
    versus: str,
    theirs: Sequence[float] | None,
    *,
    at_most: float,
    note: str = "",
) -> BenchRow:
    """A row whose goal is ``median(ours) <= at_most x median(theirs)``; failed when there is no
    ``theirs`` to compare with (``note`` says why)."""
    best, median = best_median(ours)
    their_best, their_median = best_median(theirs) if theirs else (None, None)
    passed = their_median is not None and median <= at_most * their_median
    return BenchRow(
        workload,
        unit,
        best,
        median,
        versus,
        their_best,
        their_median,
        f"<= {at_most:g}x {versus}",
        passed,
        note if theirs else note or f"no {versus} figure",
    )


def under(
    workload: str,
    unit: str,
    ours: Sequence[float],
    limit: float,
    *,
    versus: str = "",
    theirs: Sequence[float] | None = None,
    note: str = "",
) -> BenchRow:
    """A row whose goal is ``median(ours) < limit`` (shown beside ``theirs`` when given)."""
    best, median = best_median(ours)
    their_best, their_median = best_median(theirs) if theirs else (None, None)
    goal = f"< {limit:g} {unit}"
    return BenchRow(
        workload, unit, best, median, versus, their_best, their_median, goal, median < limit, note
    )


def shown(
    workload: str,
    unit: str,
    ours: Sequence[float],
    *,
    versus: str = "",
    theirs: Sequence[float] | None = None,
    note: str = "",
) -> BenchRow:
    """A row without a goal of its own (context for the rows that have one)."""
    best, median = best_median(ours)
    their_best, their_median = best_median(theirs) if theirs else (None, None)
    return BenchRow(workload, unit, best, median, versus, their_best, their_median, "", None, note)


def interleaved(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each side's figure per round, the sides taking turns (A, B, C, A, B, C...)."""
    figures: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, measure in sides.items():
            figures[name].append(measure())
    return figures


def check(what: str, got: object, expected: object) -> None:
    """Raise WrongResult unless ``got == expected``."""
    if got != expected:
        raise WrongResult(f"{what}: got {got!r}, expected {expected!r}")


def login_session(user: Any) -> str:
    """The key of a new database session signed in as ``user`` (a Django user): the ``sessionid`` cookie
    of a bench's clients (Django must be set up)."""
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session.update(
        {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": user.get_session_auth_hash(),
        }
    )
    session.create()
    return str(session.session_key)
