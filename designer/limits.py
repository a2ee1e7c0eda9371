"""How much a person may type into each kind of field, and the message when it is too much: every limit
on user input of the designer, in one place.

Model ``CharField`` lengths are the database's limit; these are what forms, views and services check, so
that a too-long value is refused with a message (never truncated silently, never stored). Templates read
them as ``limits.X`` for their ``maxlength`` (``designer.context_processors.limits``). The size of a whole
form post is ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (settings).
"""

from __future__ import annotations

#: names of teams, projects and pipelines, and a step's id (the models' max_length)
NAME = 100
STEP_ID = 100
#: a pipeline's description, and its comma-separated tags
DESCRIPTION = 2000
TAGS = 500
#: a version's message
MESSAGE = 500
#: one argument field of a step form
ARGUMENT = 100_000
#: the YAML text of a pipeline or project (applied in the editor, or uploaded)
YAML = 1_048_576
#: what the browser says of itself on an edit: its tab's id, the edit's label (cut, not refused: not typed)
CLIENT = 40
LABEL = 200
#: a run's variable overrides, as typed into the Run form
RUN_VARIABLES = 10_000


class TooLong(ValueError):
    """A value longer than its field allows; the message names the field and both lengths."""


def check_length(label: str, value: str, limit: int) -> str:
    """``value`` when it fits in ``limit`` characters, else TooLong saying so."""
    if len(value) > limit:
        raise TooLong(f"{label} is {len(value):,} characters long; it may have at most {limit:,}.")
    return value


def as_dict() -> dict[str, int]:
    """Every limit by name, for templates."""
    return {name: value for name, value in globals().items() if name.isupper() and isinstance(value, int)}
