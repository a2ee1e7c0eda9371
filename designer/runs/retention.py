"""The retention rule of step outputs: a run's kept Parquet files go after ``PIPEDECK_OUTPUTS_RETENTION_DAYS``
or, oldest first, when its team's kept outputs take more than ``PIPEDECK_OUTPUTS_TEAM_MAX_MB``; previews go
after the same days. Applied by ``manage.py clean_outputs`` and by every worker's loop when it is idle
(``OutputsCleaner``). A run still running is never touched; a summary (``StepOutput``) stays with its run.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from designer.runs.isolation import team_data_root
from designer.runs.models import FINISHED_STATES, Run, RunKind
from designer.runs.outputs import OUTPUTS_FOLDER, outputs_path
from designer.teams.models import Team

log = logging.getLogger(__name__)


@dataclass
class Cleaned:
    """What one pass removed."""

    expired: list[int] = field(default_factory=list)
    over_cap: list[int] = field(default_factory=list)
    previews: int = 0
    orphans: int = 0

    def __str__(self) -> str:
        return (
            f"{len(self.expired)} run(s) past retention, {len(self.over_cap)} over their team's cap, "
            f"{self.previews} preview(s), {self.orphans} folder(s) of deleted runs"
        )


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it is gone)."""
    total = 0
    for item in path.rglob("*") if path.is_dir() else ():
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:
            pass
    return total


def _remove(run: Run) -> None:
    shutil.rmtree(outputs_path(run), ignore_errors=True)
    Run.objects.filter(pk=run.pk).update(outputs_kept=False)


def clean(now: dt.datetime | None = None) -> Cleaned:
    """Apply the retention rule once."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.PIPEDECK_OUTPUTS_RETENTION_DAYS)
    done = Cleaned()
    kept = Run.objects.filter(outputs_kept=True, state__in=FINISHED_STATES).select_related("team")
    for run in kept.filter(created_at__lt=cutoff):
        _remove(run)
        done.expired.append(run.pk)
    previews = Run.objects.filter(kind=RunKind.PREVIEW, state__in=FINISHED_STATES, created_at__lt=cutoff)
    done.previews = previews.count()
    previews.delete()
    cap = settings.PIPEDECK_OUTPUTS_TEAM_MAX_MB * 1024 * 1024
    for team in Team.objects.filter(pk__in=kept.values("team_id").distinct()):
        done.over_cap += _cap_team(team, cap)
        done.orphans += _orphans(team)
    return done


def _cap_team(team: Team, cap: int) -> list[int]:
    """Remove the team's oldest kept outputs until the rest fit in ``cap`` bytes."""
    runs = list(
        Run.objects.filter(team=team, outputs_kept=True, state__in=FINISHED_STATES)
        .select_related("team")
        .order_by("created_at", "pk")
    )
    sizes = {run.pk: folder_size(outputs_path(run)) for run in runs}
    total = sum(sizes.values())
    removed = []
    for run in runs:
        if total <= cap:
            break
        _remove(run)
        total -= sizes[run.pk]
        removed.append(run.pk)
    return removed


def _orphans(team: Team) -> int:
    """Remove the outputs folders of runs that no longer exist (a deleted project's, say)."""
    root = team_data_root(team) / OUTPUTS_FOLDER
    if not root.is_dir():
        return 0
    folders = {
        int(p.name[4:]): p for p in root.iterdir() if p.name.startswith("run-") and p.name[4:].isdigit()
    }
    known = set(Run.objects.filter(pk__in=list(folders)).values_list("pk", flat=True))
    for run_id in set(folders) - known:
        shutil.rmtree(folders[run_id], ignore_errors=True)
    return len(set(folders) - known)


class OutputsCleaner:
    """Applies the retention rule from a worker's loop, at most every ``PIPEDECK_OUTPUTS_CLEAN_EVERY``
    seconds, in the worker's database threads (it never holds up the loop)."""

    def __init__(self, db: Callable[..., Awaitable[Any]]) -> None:
        self.db = db
        self.last = 0.0

    async def tick(self) -> None:
        if time.monotonic() - self.last < settings.PIPEDECK_OUTPUTS_CLEAN_EVERY:
            return
        self.last = time.monotonic()
        try:
            done = await self.db(clean)
        except Exception:
            log.exception("cleaning kept step outputs failed")
            return
        if done.expired or done.over_cap or done.previews or done.orphans:
            log.info("kept step outputs cleaned: %s", done)
