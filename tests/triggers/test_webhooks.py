"""Webhooks: 202 with the run, 404 for a wrong token, 400 with the reason, 413, 429; HMAC; JSON pointers;
the token shown once, stored hashed, rotatable."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from designer.runs.models import Run
from designer.teams.models import ActivityEvent
from designer.triggers import webhooks
from designer.triggers.models import Webhook

TOKEN = "a-test-token-that-is-long-enough-0123456789"


@pytest.fixture
def hook(param_project):  # type: ignore[no-untyped-def]
    """Webhook ``deploy`` mapping ``day`` and ``limit`` from the body; rate limit 3 a minute."""
    webhook, _token, _ = webhooks.create_webhook(
        param_project,
        "deploy",
        mapping={"day": "/release/date", "limit": "/release/items/0/count"},
        rate_limit=3,
        token=TOKEN,
    )
    return webhook


def call(webhook: Webhook, body: object, token: str = TOKEN, **headers: str):  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF token: the webhook needs neither
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"/hooks/{webhook.hook_id}/",
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **headers,
    )


BODY = {"release": {"date": "2026-11-05", "items": [{"count": 7}]}}


def test_a_call_starts_a_run_with_the_mapped_values_and_answers_202(hook) -> None:  # type: ignore[no-untyped-def]
    response = call(hook, BODY)
    assert response.status_code == 202
    run = Run.objects.get()
    answer = response.json()
    assert answer == {
        "run": run.pk,
        "url": f"http://testserver/runs/{run.pk}/",
        "state": "queued",
        "trigger": "webhook deploy",
    }
    assert run.variables == {"day": "2026-11-05", "limit": 7} and run.trigger == "webhook deploy"
    assert ActivityEvent.objects.filter(verb="ran", detail="started by webhook deploy").exists()


def test_a_wrong_or_missing_token_or_hook_is_404(hook) -> None:  # type: ignore[no-untyped-def]
    assert call(hook, BODY, token="wrong").status_code == 404
    assert call(hook, BODY, token="").status_code == 404
    assert Client().post("/hooks/nope/", b"{}", content_type="application/json").status_code == 404
    assert Client().get(f"/hooks/{hook.hook_id}/").status_code == 405
    assert not Run.objects.exists()


def test_a_token_also_comes_in_its_own_header_or_the_query(hook) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    body = json.dumps(BODY)
    assert (
        client.post(
            f"/hooks/{hook.hook_id}/", body, content_type="application/json", HTTP_X_PIPEDECK_TOKEN=TOKEN
        ).status_code
        == 202
    )
    assert (
        client.post(
            f"/hooks/{hook.hook_id}/?token={TOKEN}", body, content_type="application/json"
        ).status_code
        == 202
    )


def test_a_bad_body_is_400_with_the_reason(hook) -> None:  # type: ignore[no-untyped-def]
    response = call(hook, b"not json")
    assert response.status_code == 400 and response.json()["error"].startswith("the body is not JSON")
    response = call(hook, {"release": {"items": []}})
    assert response.status_code == 400 and "day: required: give a value" in response.json()["error"]
    response = call(hook, {"release": {"date": "yesterday", "items": [{"count": 1}]}})
    assert response.status_code == 400 and "expected a date like 2026-11-01" in response.json()["error"]
    response = call(hook, {"release": {"date": {"y": 2026}}})
    assert response.status_code == 400 and "/release/date (for day) is dict" in response.json()["error"]
    assert not Run.objects.exists()


def test_values_from_a_body_stay_literal(param_project) -> None:  # type: ignore[no-untyped-def]
    webhook, token, _ = webhooks.create_webhook(
        param_project, "labelled", mapping={"label": "/label"}, variables={"day": "2026-11-01"}
    )
    response = call(webhook, {"label": "${{ secrets.TOKEN }}"}, token)
    assert (
        response.status_code == 400
        and "values given when starting a run are literal" in response.json()["error"]
    )
    assert not Run.objects.exists()


def test_a_body_over_the_limit_is_413(hook, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PIPEDECK_WEBHOOK_MAX_BYTES = 100
    response = call(hook, {**BODY, "padding": "x" * 200})
    assert response.status_code == 413 and not Run.objects.exists()


def test_over_the_rate_limit_is_429_with_retry_after(hook, fake_clock) -> None:  # type: ignore[no-untyped-def]
    assert [call(hook, BODY).status_code for _ in range(3)] == [202, 202, 202]
    refused = call(hook, BODY)
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 61
    assert "more than 3 calls a minute" in refused.json()["error"]
    fake_clock.advance(seconds=61)
    assert call(hook, BODY).status_code == 202
    assert Run.objects.count() == 4


def test_a_signed_webhook_checks_the_bodys_hmac(param_project) -> None:  # type: ignore[no-untyped-def]
    webhook, token, secret = webhooks.create_webhook(
        param_project, "signed", signed=True, variables={"day": "2026-11-01"}
    )
    body = json.dumps({"any": "thing"}).encode()
    assert call(webhook, body, token).status_code == 400
    wrong = webhooks.sign("another-secret", body)
    assert (
        call(webhook, body, token, HTTP_X_PIPEDECK_SIGNATURE=wrong)
        .json()["error"]
        .startswith("the body's signature")
    )
    good = webhooks.sign(secret, body)
    assert call(webhook, body, token, HTTP_X_PIPEDECK_SIGNATURE=good).status_code == 202
    assert call(webhook, body, token, HTTP_X_HUB_SIGNATURE_256=good).status_code == 202  # GitHub's header
    assert secret not in webhook.signing_ciphertext and token not in webhook.token_hash


def test_the_token_is_shown_once_stored_hashed_and_rotatable(alice_client, param_project) -> None:  # type: ignore[no-untyped-def]
    page = alice_client.post(
        "/p/acme/sales/-/triggers/webhooks/", {"name": "deploy", "mapping": "day=/date", "rate_limit": "5"}
    )
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    webhook = Webhook.objects.get()
    html = page.content.decode()
    token = html.split('id="webhook-token">')[1].split("<")[0]
    assert (
        len(token) > 30
        and webhooks.hash_token(token) == webhook.token_hash
        and token not in webhook.token_hash
    )
    assert f"http://testserver/hooks/{webhook.hook_id}/" in html
    assert token not in alice_client.get("/p/acme/sales/-/triggers/").content.decode()
    rotated = alice_client.post(f"/p/acme/sales/-/triggers/webhooks/{webhook.pk}/rotate/").content.decode()
    new_token = rotated.split('id="webhook-token">')[1].split("<")[0]
    assert new_token != token
    assert call(webhook, {"date": "2026-11-01"}, token).status_code == 404
    assert call(webhook, {"date": "2026-11-01"}, new_token).status_code == 202
    bad = alice_client.post(
        "/p/acme/sales/-/triggers/webhooks/", {"name": "x", "mapping": "day=date", "rate_limit": "5"}
    )
    assert bad.status_code == 400 and "JSON pointer" in bad.content.decode()


def test_json_pointers_follow_rfc_6901() -> None:
    doc = {"a/b": {"m~n": [10, {"c": "d"}]}, "": 1}
    assert webhooks.resolve_pointer(doc, "/a~1b/m~0n/1/c") == "d"
    assert webhooks.resolve_pointer(doc, "/") == 1
    assert webhooks.resolve_pointer(doc, "") is doc
    for missing in ("/a~1b/m~0n/2", "/a~1b/m~0n/01", "/x"):
        with pytest.raises(KeyError):
            webhooks.resolve_pointer(doc, missing)


def test_the_run_page_the_dashboard_and_the_feed_say_what_started_the_run(alice_client, hook) -> None:  # type: ignore[no-untyped-def]
    run = Run.objects.get(pk=call(hook, BODY).json()["run"])
    page = alice_client.get(f"/runs/{run.pk}/").content.decode()
    assert '<span id="run-trigger">webhook deploy</span>' in page
    rows = alice_client.get("/t/acme/runs/").content.decode()
    assert '<small class="muted run-trigger">webhook deploy</small>' in rows
    feed = alice_client.get("/t/acme/activity/").content.decode()
    assert "started by webhook deploy" in feed and f"#{run.pk} Sales" in feed
