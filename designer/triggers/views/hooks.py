"""The webhook endpoint: token-authenticated (no session, no CSRF token), a size-limited JSON body."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from designer.triggers import webhooks


def _token(request: HttpRequest) -> str:
    """The token: ``Authorization: Bearer ...``, ``X-Pipedeck-Token``, or ``?token=`` for callers that
    can set neither (a URL may end up in a proxy's log: prefer a header)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Pipedeck-Token", "") or request.GET.get("token", "")


def _refused(status: int, reason: str, retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse({"error": reason}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@csrf_exempt
@require_POST
def hook(request: HttpRequest, hook: str) -> JsonResponse:
    """Start the webhook's run: 202 with the run's id and URL; 404 for an unknown hook or a wrong token,
    400 for a bad body (the reason given), 413 for a body over the limit, 429 over the rate limit."""
    webhook = webhooks.find(hook, _token(request))
    if webhook is None:
        return _refused(404, "no such webhook, or a wrong token")
    limit = settings.PIPEDECK_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _refused(413, f"the body is larger than {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refused(413, f"the body is larger than {limit} bytes")
    signature = next(
        (request.headers.get(h, "") for h in webhooks.SIGNATURE_HEADERS if request.headers.get(h)), ""
    )
    try:
        run = webhooks.call(webhook, body, signature)
    except webhooks.HookRefused as exc:
        return _refused(exc.status, str(exc), exc.retry_after)
    url = request.build_absolute_uri(reverse("designer-run", args=[run.pk]))
    return JsonResponse({"run": run.pk, "url": url, "state": run.state, "trigger": run.trigger}, status=202)
