"""Sending alerts: e-mail through Django's mailer (settings ``MAILERS``), webhooks over HTTP through the
site's egress policy, each delivery retried with a doubling backoff and every attempt logged on its row.

A delivery never touches a run: it happens in the workers' trigger loop, after the run finished, and a
destination that fails (or hangs until its timeout) only marks its own delivery.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F

from designer.runs.isolation import egress_policy
from designer.triggers import alerts, clock
from designer.triggers.models import AlertDestination, Delivery, DeliveryState, DestinationKind
from orchestrator import EgressRefused

log = logging.getLogger(__name__)

#: deliveries sent per look
BATCH = 20


class DeliveryFailed(Exception):
    """One attempt failed; the message says why (never the webhook URL)."""


@dataclass(frozen=True)
class Outgoing:
    """One claimed attempt: everything needed to send it without the database."""

    delivery_id: int
    attempt: int
    kind: str
    #: the addresses or the webhook URL (decrypted: in memory only)
    target: str
    hint: str
    message: dict[str, Any]

    def __repr__(self) -> str:  # the URL may hold a credential: never in a traceback or a log
        return f"<Outgoing delivery={self.delivery_id} attempt={self.attempt} to {self.hint}>"


# ---- payloads --------------------------------------------------------------------------------------------


def slack_payload(message: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook JSON (Mattermost, Rocket.Chat and others read it too)."""
    link = f"<{message['url']}|{message['title']}>"
    body = message["text"].replace(message["url"], "").strip()
    return {"text": f"{link}\n{body}".strip()}


def json_payload(message: dict[str, Any]) -> dict[str, Any]:
    """The generic JSON body: the message's fields as they are."""
    return {"source": "pipedeck", **message}


# ---- sending ---------------------------------------------------------------------------------------------


def post_json(url: str, payload: dict[str, Any], timeout: float) -> str:
    """POST ``payload`` to ``url``, connecting only where the site's egress policy allows: the host is
    resolved and checked, then that address is connected to (TLS still checks the name); no redirect is
    followed. Returns the answer's status line; DeliveryFailed says why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryFailed("not an http(s) URL")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = egress_policy().resolve_checked(host, port)
    except EgressRefused as exc:
        raise DeliveryFailed(str(exc)) from None
    except OSError as exc:
        raise DeliveryFailed(f"cannot resolve {host}: {exc}") from None
    netloc = f"[{address}]" if ":" in address else address
    direct = urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "Pipedeck alerts"}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(direct, json=payload, headers=headers, extensions=extensions)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {_without(str(exc), url, direct)}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"answered HTTP {response.status_code}: {response.text[:200]}")
    return f"answered HTTP {response.status_code}"


def _without(text: str, *urls: str) -> str:
    for url in urls:
        text = text.replace(url, "<url>")
    return text


def send_email(addresses: str, message: dict[str, Any]) -> str:
    """Send the message to ``addresses`` (comma-separated) with the default mailer."""
    recipients = [a.strip() for a in addresses.split(",") if a.strip()]
    email = EmailMessage(
        subject=f"[Pipedeck] {message['title']}",
        body=message["text"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    try:
        email.send()
    except Exception as exc:  # SMTP refused, unreachable...: the delivery is retried
        raise DeliveryFailed(f"e-mail not sent: {type(exc).__name__}: {exc}") from None
    return f"e-mail sent to {len(recipients)} address(es)"


def send(outgoing: Outgoing) -> str:
    """One attempt (no database); DeliveryFailed says why it failed."""
    timeout = settings.PIPEDECK_ALERT_TIMEOUT
    if outgoing.kind == DestinationKind.EMAIL:
        return send_email(outgoing.target, outgoing.message)
    if outgoing.kind == DestinationKind.SLACK:
        return post_json(outgoing.target, slack_payload(outgoing.message), timeout)
    return post_json(outgoing.target, json_payload(outgoing.message), timeout)


# ---- the database side -----------------------------------------------------------------------------------


def _outgoing(delivery: Delivery) -> Outgoing:
    destination = delivery.destination
    message = (
        alerts.message(delivery.run, delivery.event)
        if delivery.run is not None
        else alerts.test_message(destination)
    )
    return Outgoing(
        delivery.pk,
        delivery.attempts,
        destination.kind,
        alerts.target_of(destination),
        destination.shown_target,
        message,
    )


def claim_due(now: dt.datetime | None = None, limit: int = BATCH) -> list[Outgoing]:
    """Claim the deliveries due for an attempt (one worker each: a conditional update); their attempts."""
    now = now or clock.now()
    lease = now + dt.timedelta(seconds=settings.PIPEDECK_ALERT_TIMEOUT * 3 + 30)
    claimed = []
    due = Delivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at"
    )
    for delivery in due.select_related("destination__project__team", "run__project", "run__team")[:limit]:
        won = Delivery.objects.filter(
            pk=delivery.pk, state=DeliveryState.PENDING, attempts=delivery.attempts
        ).update(attempts=F("attempts") + 1, next_attempt_at=lease)
        if won:
            delivery.attempts += 1
            try:
                claimed.append(_outgoing(delivery))
            except Exception as exc:  # the URL cannot be decrypted, the run is gone...
                record(delivery.pk, delivery.attempts, False, f"cannot prepare the message: {exc}", now)
    return claimed


def backoff(attempt: int) -> dt.timedelta:
    """The wait after failed attempt number ``attempt`` (1, 2, ...): the base, doubling each time."""
    return dt.timedelta(seconds=settings.PIPEDECK_ALERT_BACKOFF * 2 ** (attempt - 1))


def record(delivery_id: int, attempt: int, ok: bool, detail: str, now: dt.datetime | None = None) -> Delivery:
    """Log one attempt on its delivery: sent, retried later (with backoff), or failed for good."""
    now = now or clock.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("destination").get(pk=delivery_id)
        delivery.log = [
            *(delivery.log or []),
            {"at": now.isoformat(), "attempt": attempt, "ok": ok, "detail": detail[:300]},
        ]
        if ok:
            delivery.state, delivery.sent_at, delivery.next_attempt_at = DeliveryState.SENT, now, None
        elif attempt >= settings.PIPEDECK_ALERT_ATTEMPTS or delivery.run_id is None:
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
        else:
            delivery.next_attempt_at = now + backoff(attempt)
        delivery.last_error = "" if ok else detail[:1000]
        delivery.save()
    level = logging.INFO if ok else logging.WARNING
    log.log(
        level,
        "alert %s of run %s to %s, attempt %d: %s",
        delivery.event,
        delivery.run_id,
        delivery.destination.shown_target,
        attempt,
        detail,
        extra={"delivery": delivery.pk, "state": delivery.state},
    )
    return delivery


def attempt(outgoing: Outgoing) -> tuple[bool, str]:
    """Send one claimed attempt; (ok, what happened)."""
    try:
        return True, send(outgoing)
    except DeliveryFailed as exc:
        return False, str(exc)
    except Exception as exc:  # a bug in a payload must not stop the loop
        return False, f"{type(exc).__name__}: {_without(str(exc), outgoing.target)}"


def send_test(destination: AlertDestination) -> Delivery:
    """Send the test message now (one attempt, no retry) and return its delivery with the outcome."""
    delivery = Delivery.objects.create(
        destination=destination, run=None, event="test", attempts=1, state=DeliveryState.PENDING
    )
    delivery.destination = destination
    ok, detail = attempt(_outgoing(delivery))
    return record(delivery.pk, 1, ok, detail)
