"""Webhooks: a URL (``/hooks/<id>/``) and a secret token that start a run when called.

The token is shown once and stored as its SHA-256 only; rotating makes a new one. An optional signing
secret (stored encrypted: it must be read back to check) makes the caller sign the body with HMAC-SHA256.
The JSON body's values reach the run's parameters through JSON pointers (RFC 6901). Each webhook accepts
at most ``rate_limit`` calls a minute, counted in the database so every web process agrees.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from designer.editor.models import Pipeline, Project
from designer.runs.launch import RunRefused
from designer.runs.models import Run
from designer.teams import activity, crypto
from designer.triggers import clock
from designer.triggers.models import Webhook, WebhookCall
from designer.triggers.parameters import InvalidValues, check_run_values
from designer.triggers.starting import start

#: the headers a signature may come in: ours, and GitHub's spelling of the same thing
SIGNATURE_HEADERS = ("X-Pipedeck-Signature", "X-Hub-Signature-256")
#: accepted calls are kept this long (the page lists them; the rate limit reads the last minute)
KEEP_CALLS = dt.timedelta(days=1)


class HookRefused(Exception):
    """A call refused: ``status`` is the HTTP answer, the message says why (never a secret)."""

    def __init__(self, status: int, reason: str, retry_after: int | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(reason)


class WebhookProblem(ValueError):
    """A webhook that cannot be saved: ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_mapping(text: str) -> dict[str, str]:
    """``NAME=/json/pointer`` lines as ``{name: pointer}``; WebhookProblem on a bad line."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, pointer = line.partition("=")
        name, pointer = name.strip(), pointer.strip()
        if not sep or not name.isidentifier() or not (pointer == "" or pointer.startswith("/")):
            raise WebhookProblem(
                "mapping", f"Line {number} must look like NAME=/path/in/body (a JSON pointer), got {line!r}."
            )
        mapping[name] = pointer
    return mapping


def _checked(project: Project, name: str, pipeline_name: str, rate_limit: int) -> Pipeline | None:
    if not name or slugify(name) != name:
        raise WebhookProblem("name", "Use a short name of lower-case letters, digits and '-' (e.g. deploy).")
    if Webhook.objects.filter(project=project, name=name).exists():
        raise WebhookProblem("name", f"The project already has a webhook named {name}.")
    if not 1 <= rate_limit <= 10_000:
        raise WebhookProblem("rate_limit", "The rate limit is between 1 and 10000 calls a minute.")
    if not pipeline_name:
        return None
    pipeline = Pipeline.objects.filter(project=project, name=pipeline_name).first()
    if pipeline is None:
        raise WebhookProblem("pipeline", f"No pipeline named {pipeline_name} in this project.")
    return pipeline


@transaction.atomic
def create_webhook(
    project: Project,
    name: str,
    *,
    pipeline: str = "",
    mapping: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
    rate_limit: int = 30,
    signed: bool = False,
    user: Any = None,
    token: str | None = None,
) -> tuple[Webhook, str, str]:
    """A new webhook: ``(webhook, token, signing secret or "")``, the two secrets to show once.

    Raises WebhookProblem, or InvalidValues when ``variables`` do not fit the run parameters."""
    target = _checked(project, name, pipeline, rate_limit)
    values = dict(variables or {})
    if values:
        check_run_values(project, values)
    token = token or secrets.token_urlsafe(32)
    signing = secrets.token_urlsafe(32) if signed else ""
    webhook = Webhook.objects.create(
        team=project.team,
        project=project,
        pipeline=target,
        name=name,
        hook_id=secrets.token_hex(8),
        token_hash=hash_token(token),
        signing_ciphertext=crypto.encrypt(signing)[0] if signing else "",
        mapping=dict(mapping or {}),
        variables=values,
        rate_limit=rate_limit,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    activity.trigger_changed(project.team, user, "created", webhook)
    return webhook, token, signing


def rotate(webhook: Webhook, user: Any) -> str:
    """A new token for ``webhook`` (the old one stops working at once); returns it, to show once."""
    token = secrets.token_urlsafe(32)
    webhook.token_hash = hash_token(token)
    webhook.rotated_at = clock.now()
    webhook.save(update_fields=["token_hash", "rotated_at"])
    activity.trigger_changed(webhook.team, user, "rotated", webhook)
    return token


def delete_webhook(webhook: Webhook, user: Any) -> None:
    activity.trigger_changed(webhook.team, user, "deleted", webhook)
    webhook.delete()


def find(hook_id: str, token: str) -> Webhook | None:
    """The webhook ``hook_id`` if ``token`` is its token, else None (the caller answers 404 either way)."""
    webhook = Webhook.objects.filter(hook_id=hook_id).select_related("project__team", "pipeline").first()
    expected = webhook.token_hash if webhook is not None else hash_token("no such webhook")
    matches = hmac.compare_digest(expected, hash_token(token or ""))
    return webhook if webhook is not None and token and matches else None


def signature_ok(webhook: Webhook, body: bytes, header: str) -> bool:
    """True when ``header`` ("sha256=<hex>" or the hex alone) is the body's HMAC-SHA256 with the webhook's
    signing secret (always True for a webhook without one)."""
    if not webhook.signing_ciphertext:
        return True
    key = crypto.decrypt(webhook.signing_ciphertext).encode("utf-8")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    given = header.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(expected, given)


def sign(secret: str, body: bytes) -> str:
    """The header value a caller sends: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at JSON pointer ``pointer`` (RFC 6901) in ``document``; KeyError when there is none."""
    if pointer == "":
        return document
    value = document
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value) and str(int(part)) == part:
            value = value[int(part)]
        else:
            raise KeyError(pointer)
    return value


def values_from_body(webhook: Webhook, body: bytes) -> dict[str, Any]:
    """The run's parameter values: the webhook's fixed ones, then those its mapping reads from the body.

    HookRefused(400) when the body is not JSON or lacks a mapped value."""
    values = dict(webhook.variables or {})
    if not webhook.mapping:
        return values
    try:
        document = json.loads(body or b"null")
    except ValueError as exc:
        raise HookRefused(400, f"the body is not JSON: {exc}") from None
    for name, pointer in webhook.mapping.items():
        try:
            value = resolve_pointer(document, pointer)
        except KeyError:
            continue  # a required parameter without it is reported by the parameter check
        if isinstance(value, dict | list):
            raise HookRefused(400, f"{pointer} (for {name}) is {type(value).__name__}, not a single value")
        values[name] = value
    return values


def call(webhook: Webhook, body: bytes, signature: str = "") -> Run:
    """Start the webhook's run for one call; HookRefused(400 or 429) says why not."""
    if not signature_ok(webhook, body, signature):
        raise HookRefused(
            400, f"the body's signature is missing or wrong: send {SIGNATURE_HEADERS[0]}: sha256=<hex>"
        )
    values = values_from_body(webhook, body)
    now = clock.now()
    with transaction.atomic():
        # one caller at a time per webhook (PostgreSQL locks the row; SQLite writes one at a time anyway)
        Webhook.objects.select_for_update().filter(pk=webhook.pk).exists()
        recent = WebhookCall.objects.filter(webhook=webhook, at__gt=now - dt.timedelta(minutes=1))
        if recent.count() >= webhook.rate_limit:
            oldest = recent.order_by("at").values_list("at", flat=True).first() or now
            wait = max(1, int((oldest + dt.timedelta(minutes=1) - now).total_seconds()) + 1)
            raise HookRefused(429, f"more than {webhook.rate_limit} calls a minute: try again later", wait)
        try:
            run = start(webhook.project, webhook.pipeline, values, trigger=webhook.label)
        except InvalidValues as exc:
            raise HookRefused(400, str(exc)) from None
        except RunRefused as exc:
            raise HookRefused(400, str(exc)) from None
        WebhookCall.objects.create(webhook=webhook, at=now, run=run)
        WebhookCall.objects.filter(webhook=webhook, at__lt=now - KEEP_CALLS).delete()
        activity.run_triggered(run)
    return run
