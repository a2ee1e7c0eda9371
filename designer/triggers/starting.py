"""Starting a run from a trigger (a schedule, a webhook, a backfill, the Run form): its parameter values
checked and typed, then ``runs.launch.start_run`` with what started it recorded on the run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from designer.editor.models import Pipeline, Project
from designer.runs import launch
from designer.runs.models import Run


def start(
    project: Project,
    pipeline: Pipeline | None,
    values: Mapping[str, Any],
    *,
    trigger: str = "",
    logical: dt.datetime | None = None,
    user: Any = None,
) -> Run:
    """Queue a run of ``project`` (or of ``pipeline``) with ``values`` checked against its parameters.

    Raises RunRefused (InvalidValues for parameter values) with a reason a user can act on."""
    return launch.start_run(  # checks ``values`` against the project's run parameters
        project,
        user,
        [pipeline.name] if pipeline is not None else None,
        values,
        trigger=trigger,
        logical_datetime=logical.isoformat() if logical is not None else "",
    )
