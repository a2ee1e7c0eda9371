"""The run queue: claim, heartbeat, finish and reap, each one short transaction on the Run row.

A claim sets the worker, the lease expiry and ``attempt += 1`` together. Every later write by that worker
is conditional on the attempt it claimed (``filter(pk=..., attempt=...)``), so once the reaper has taken
a run away (or re-queued it for another worker) the old worker's writes change nothing and tell it to stop.
All times come from the database clock (``Now()``), so workers on other machines agree on leases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce, Now

from designer.runs.models import RUN_FORMAT, Run, RunQuerySet, WorkerBeat
from orchestrator import Status

log = logging.getLogger(__name__)

WORKER_LOST = "worker lost"


@dataclass(frozen=True)
class Claim:
    """A run held by one worker for one attempt: the key of every write the worker makes."""

    run_id: int
    attempt: int
    worker_id: str


class StaleClaim(Exception):
    """The run no longer belongs to this attempt (reaped, re-queued or finished elsewhere)."""


def _lease_end(lease: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + Value(timedelta(seconds=lease)), output_field=DateTimeField())


def _candidate_ids(limit: int) -> list[int]:
    return list(Run.objects.queued().values_list("pk", flat=True)[:limit])


def claim_next_run(worker_id: str, lease: float) -> Claim | None:
    """Take the oldest queued run for ``worker_id``, or None. Never hands one run to two claimers."""
    claims = claim_runs(worker_id, lease, 1)
    return claims[0] if claims else None


def claim_runs(worker_id: str, lease: float, limit: int) -> list[Claim]:
    """Take up to ``limit`` of the oldest queued runs for ``worker_id`` at once (a worker with room for
    several starts them together). Never hands one run to two claimers."""
    claimed = {
        "state": Status.RUNNING,
        "worker_id": worker_id,
        "attempt": F("attempt") + 1,
        "lease_expires_at": _lease_end(lease),
        "heartbeat_at": None,
        "started_at": Coalesce(F("started_at"), Now()),
    }
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            waiting = Run.objects.queued().select_for_update(skip_locked=True)
            rows = list(waiting.values_list("pk", "attempt")[:limit])
            if rows:
                Run.objects.filter(pk__in=[run_id for run_id, _ in rows]).update(**claimed)
        # the rows stayed locked: nobody else changed them
        return [Claim(run_id, attempt + 1, worker_id) for run_id, attempt in rows]
    # SQLite: no row locks, but a conditional UPDATE is atomic, so only one claimer can move it from queued.
    claims: list[Claim] = []
    for run_id in _candidate_ids(limit + 4):
        with transaction.atomic():
            if Run.objects.filter(pk=run_id, state=Status.QUEUED).update(**claimed) == 1:
                attempt = Run.objects.values_list("attempt", flat=True).get(pk=run_id)
                claims.append(Claim(run_id, attempt, worker_id))
        if len(claims) == limit:
            break
    return claims


def owned(claim: Claim) -> RunQuerySet:
    """The queryset matching the run only while ``claim`` still holds it."""
    return Run.objects.filter(pk=claim.run_id, attempt=claim.attempt, state=Status.RUNNING)


def heartbeat(claim: Claim, lease: float) -> bool:
    """Extend the lease; False when the claim is stale (the worker must stop its run)."""
    return owned(claim).update(heartbeat_at=Now(), lease_expires_at=_lease_end(lease)) == 1


def finished_by(claim: Claim) -> bool:
    """Whether the claim's own attempt finished the run: a heartbeat that lands just after the run's own
    finish fails like one on a run taken away, and this tells them apart."""
    ended = Run.objects.filter(pk=claim.run_id, attempt=claim.attempt).exclude(
        state__in=[Status.QUEUED, Status.RUNNING]
    )
    return ended.exclude(error=WORKER_LOST).exists()


def finish_run(claim: Claim, state: str, error: str = "") -> bool:
    """Record the outcome of a held run; False (nothing written) when the claim is stale."""
    return (
        owned(claim).update(
            state=state, error=error[:10_000], finished_at=Now(), lease_expires_at=None, worker_id=""
        )
        == 1
    )


def requeue_run(claim: Claim) -> bool:
    """Give a held run back to the queue (graceful shutdown); False when the claim is stale."""
    return (
        owned(claim).update(state=Status.QUEUED, worker_id="", lease_expires_at=None, heartbeat_at=None) == 1
    )


def cancel_queued(run_id: int) -> bool:
    """Cancel a run nobody has claimed yet; False when it is no longer queued."""
    return (
        Run.objects.filter(pk=run_id, state=Status.QUEUED).update(
            state=Status.CANCELLED,
            cancel_requested=True,
            finished_at=Now(),
            error="cancelled before it started",
        )
        == 1
    )


def request_cancel(run_id: int) -> bool:
    """Ask the worker holding a running run to cancel it (it polls the flag); False when not running."""
    return Run.objects.filter(pk=run_id, state=Status.RUNNING).update(cancel_requested=True) == 1


def cancel_requested_ids(run_ids: list[int]) -> set[int]:
    """Which of these runs have been asked to cancel."""
    if not run_ids:
        return set()
    return set(Run.objects.filter(pk__in=run_ids, cancel_requested=True).values_list("pk", flat=True))


@dataclass(frozen=True)
class Reaped:
    run_id: int
    attempt: int
    requeued: bool


def reap_lost_runs() -> list[Reaped]:
    """Recover running runs whose lease has passed (by the database clock), including never-heartbeated ones.

    Each is re-queued while it has attempts left, else failed with "worker lost".
    """
    expired = Run.objects.filter(state=Status.RUNNING).filter(
        Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True)
    )
    reaped: list[Reaped] = []
    for run_id, attempt, max_attempts in expired.values_list("pk", "attempt", "max_attempts"):
        still_lost = Run.objects.filter(pk=run_id, attempt=attempt, state=Status.RUNNING).filter(
            Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True)
        )
        requeue = attempt < max_attempts and not _cancel_was_requested(run_id)
        if requeue:
            done = still_lost.update(
                state=Status.QUEUED, worker_id="", lease_expires_at=None, heartbeat_at=None
            )
        else:
            done = still_lost.update(
                state=Status.FAILED,
                error=WORKER_LOST,
                finished_at=Now(),
                worker_id="",
                lease_expires_at=None,
            )
        if done:
            log.warning(
                "run %s lost its worker (attempt %s): %s",
                run_id,
                attempt,
                "re-queued" if requeue else "failed",
            )
            reaped.append(Reaped(run_id, attempt, requeue))
    return reaped


def _cancel_was_requested(run_id: int) -> bool:
    return Run.objects.filter(pk=run_id, cancel_requested=True).exists()


def beat(worker_id: str, lease: float) -> None:
    """The worker is alive (readiness counts the workers whose beat is younger than their lease)."""
    WorkerBeat.objects.update_or_create(
        worker_id=worker_id, defaults={"beat_at": Now(), "lease": lease, "run_format": RUN_FORMAT}
    )


def forget_worker(worker_id: str) -> None:
    """The worker stopped."""
    WorkerBeat.objects.filter(worker_id=worker_id).delete()


def live_workers() -> int:
    """Workers whose last beat is younger than their lease (by the database clock)."""
    beats = WorkerBeat.objects.annotate(now=Now()).values_list("beat_at", "lease", "now")
    return sum(1 for beat_at, lease, now in beats if beat_at + timedelta(seconds=lease) >= now)
