"""How much a person may type into each kind of field, and the message when it is too much.

Model ``CharField`` lengths are the database's limit; these are what forms and services check, so that a
too-long value is refused with a message (never truncated silently, never stored). The size of a whole
form post is ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (settings).
"""

from __future__ import annotations

#: names of teams, projects and pipelines (the models' max_length)
NAME = 100
#: free text: descriptions, messages
DESCRIPTION = 10_000
#: a version's message
MESSAGE = 500


class TooLong(ValueError):
    """A value longer than its field allows; the message names the field and both lengths."""


def check_length(label: str, value: str, limit: int) -> str:
    """``value`` when it fits in ``limit`` characters, else TooLong saying so."""
    if len(value) > limit:
        raise TooLong(f"{label} is {len(value):,} characters long; it may have at most {limit:,}.")
    return value
