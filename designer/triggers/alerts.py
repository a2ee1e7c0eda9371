"""Alerts: where a project's alerts go, which finished runs need one, and what the message says.

Workers sweep finished runs as they tick: every (destination, run) pair gets one ``Delivery`` row, unique,
so a run is decided (and sent) once however many workers look. A destination hears only of runs that
finished after it was added. The delivery itself (retries, backoff) is ``designer.triggers.delivery``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse

from designer.editor.models import Project
from designer.runs.isolation import egress_policy
from designer.runs.models import FINISHED_STATES, Run, StepRun
from designer.teams import activity, crypto
from designer.teams.secrets import team_secret_resolver
from designer.triggers.models import AlertDestination, Delivery, DeliveryState, DestinationKind
from orchestrator import Redactor, Status

#: a destination looks this far back for finished runs it has not decided yet
SWEEP_WINDOW = dt.timedelta(days=1)
#: runs decided per destination per look
SWEEP_BATCH = 200


class AlertProblem(ValueError):
    """A destination that cannot be saved: ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _emails(text: str) -> str:
    addresses = [a for a in re.split(r"[\s,;]+", text) if a]
    if not addresses:
        raise AlertProblem("target", "Give at least one e-mail address.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise AlertProblem("target", f"{address!r} is not an e-mail address.") from None
    return ", ".join(addresses)


def url_hint(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host (the path often holds a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def _webhook_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertProblem("target", "Give the webhook's full URL, starting with https://.")
    problem = egress_policy().literal_problem(url.strip())
    if problem:
        raise AlertProblem("target", f"This site's runs and alerts may not reach it: {problem}")
    return url.strip()


@transaction.atomic
def add_destination(
    project: Project,
    *,
    name: str,
    kind: str,
    target: str,
    on_failure: bool = True,
    on_success: bool = False,
    on_recovery: bool = True,
    user: Any = None,
) -> AlertDestination:
    """A new destination; the webhook URL is stored encrypted and never shown again (its host is)."""
    if not name.strip():
        raise AlertProblem("name", "Name the destination (e.g. 'data team' or '#alerts').")
    if kind not in DestinationKind.values:
        raise AlertProblem("kind", "Choose e-mail or a webhook.")
    if not (on_failure or on_success or on_recovery):
        raise AlertProblem("events", "Choose at least one of failure, success and recovery.")
    destination = AlertDestination(
        team=project.team,
        project=project,
        name=name.strip()[:100],
        kind=kind,
        on_failure=on_failure,
        on_success=on_success,
        on_recovery=on_recovery,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if kind == DestinationKind.EMAIL:
        destination.emails = _emails(target)
    else:
        url = _webhook_url(target)
        destination.url_ciphertext = crypto.encrypt(url)[0]
        destination.url_hint = url_hint(url)
    destination.save()
    activity.trigger_changed(project.team, user, "created", destination, destination.get_kind_display())
    return destination


def delete_destination(destination: AlertDestination, user: Any) -> None:
    activity.trigger_changed(destination.team, user, "deleted", destination)
    destination.delete()


def target_of(destination: AlertDestination) -> str:
    """The addresses, or the decrypted webhook URL (for sending only: never shown, never logged)."""
    if destination.kind == DestinationKind.EMAIL:
        return destination.emails
    return crypto.decrypt(destination.url_ciphertext)


# ---- which runs need an alert -----------------------------------------------------------------------------


def _after_failure(run: Run) -> bool:
    """True when the same selection of the project last finished (before ``run``) with a failure."""
    previous = (
        Run.objects.listed()
        .filter(
            project_id=run.project_id,
            pipelines=run.pipelines,
            state__in=(Status.FAILED, Status.SUCCEEDED),
            finished_at__lt=run.finished_at,
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at", "-pk")
        .values_list("state", flat=True)
        .first()
    )
    return previous == Status.FAILED


def event_for(run: Run, destination: AlertDestination) -> str | None:
    """failure, recovery (the first success after a failure), success, or None: what to tell."""
    if run.state == Status.FAILED:
        return "failure" if destination.on_failure else None
    if run.state != Status.SUCCEEDED:
        return None
    if destination.on_recovery and _after_failure(run):
        return "recovery"
    return "success" if destination.on_success else None


def sweep(now: dt.datetime) -> int:
    """Decide every finished run no destination of its project has decided yet; deliveries queued."""
    queued = 0
    for destination in AlertDestination.objects.all():
        decided = Delivery.objects.filter(destination=destination, run=OuterRef("pk"))
        runs = (
            Run.objects.listed()
            .filter(
                project_id=destination.project_id,
                state__in=FINISHED_STATES,
                finished_at__gte=max(destination.created_at, now - SWEEP_WINDOW),
            )
            .exclude(Exists(decided))
            .order_by("finished_at", "pk")[:SWEEP_BATCH]
        )
        for run in runs:
            event = event_for(run, destination)
            try:
                with transaction.atomic():
                    Delivery.objects.create(
                        destination=destination,
                        run=run,
                        event=event or "",
                        state=DeliveryState.PENDING if event else DeliveryState.NONE,
                        next_attempt_at=now if event else None,
                    )
            except IntegrityError:
                continue  # another worker decided it
            queued += 1 if event else 0
    return queued


# ---- what a message says ----------------------------------------------------------------------------------


def site_url(path: str) -> str:
    return settings.PIPEDECK_SITE_URL.rstrip("/") + path


def _failure(run: Run) -> tuple[str, str, str]:
    """(pipeline, phase.step, error) of the run's first failed step (or pipeline, or the run itself)."""
    step = (
        StepRun.objects.filter(pipeline_run__run=run, state=Status.FAILED)
        .select_related("pipeline_run")
        .order_by("pipeline_run__position", "position")
        .first()
    )
    if step is not None:
        return step.pipeline_run.name, f"{step.phase}.{step.step_id}", step.error or step.pipeline_run.error
    pipeline_run = run.pipeline_runs.filter(state=Status.FAILED).order_by("position").first()
    if pipeline_run is not None:
        return pipeline_run.name, "", pipeline_run.error
    return "", "", run.error


def _masker(team: Any) -> Redactor:
    """The team's secret values, masked (errors were masked by the run already: this is the second look)."""
    resolver = team_secret_resolver(team)
    redactor = Redactor()
    for name in resolver.names():
        try:
            redactor.add(resolver(name))
        except Exception:  # a secret that cannot be read cannot leak either
            continue
    return redactor


def message(run: Run, event: str) -> dict[str, Any]:
    """What an alert about ``run`` says (every text masked)."""
    mask = _masker(run.team)
    pipeline, step, error = _failure(run) if run.state == Status.FAILED else ("", "", "")
    verb = {"failure": "failed", "recovery": "recovered", "success": "succeeded"}.get(event, event)
    names = ", ".join(run.pipeline_names)
    title = f"Run #{run.pk} of {run.project.name} {verb}"
    lines = [f"{title} ({names})."]
    if run.trigger:
        lines.append(f"Started by {run.trigger}.")
    if pipeline:
        lines.append(f"Failed: pipeline {pipeline}" + (f", step {step}" if step else "") + ".")
    if error:
        lines.append(f"Error: {error}")
    url = site_url(reverse("designer-run", args=[run.pk]))
    lines.append(url)
    return {
        "event": event,
        "title": mask(title),
        "text": mask("\n".join(lines)),
        "url": url,
        "run": run.pk,
        "state": run.state,
        "team": run.team.slug,
        "project": run.project.name,
        "pipelines": run.pipeline_names,
        "trigger": run.trigger,
        "pipeline": pipeline,
        "step": step,
        "error": mask(error),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def test_message(destination: AlertDestination) -> dict[str, Any]:
    """The "send test" message."""
    project = destination.project
    url = site_url(
        reverse("designer-project-triggers", kwargs={"team": project.team.slug, "project": project.slug})
    )
    text = f"Test alert from Pipedeck for project {project.name}: this destination works.\n{url}"
    return {
        "event": "test",
        "title": f"Test alert for {project.name}",
        "text": text,
        "url": url,
        "run": None,
        "state": "",
        "team": project.team.slug,
        "project": project.name,
        "pipelines": [],
        "trigger": "",
        "pipeline": "",
        "step": "",
        "error": "",
        "finished_at": None,
    }
