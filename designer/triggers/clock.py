"""The time triggers go by. Everything here asks ``clock.now()``; tests replace it with a fake clock, so a
fire time is reached by moving the clock, never by sleeping."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    """The current time (aware, UTC)."""
    return timezone.now()
