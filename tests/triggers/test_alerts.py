"""Alerts: to a real local HTTP receiver (Slack-compatible and generic JSON) and Django's locmem mail, from
real runs through a real worker; a destination that times out never fails a run; retries with backoff;
the egress policy; secrets masked; recovery; the "send test" button."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
from django.core import mail
from django.utils import timezone

from designer.runs.launch import start_run
from designer.runs.models import Run
from designer.teams.secrets import set_secret
from designer.triggers import alerts, delivery
from designer.triggers.models import AlertDestination, Delivery
from tests.factory import make_pipeline

FAILING = {
    "type": "ETL",
    "phases": {
        "extract": {
            "steps": [{"id": "gen", "plugin": "generate_rows", "args": {"rows": 5, "columns": {"id": "i"}}}]
        },
        "transform": {"steps": [{"id": "bad", "plugin": "filter_rows", "args": {"expr": "nope > 1"}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
    },
}
SLACK_PATH = "/services/T000/B000/credential-in-the-path"


@pytest.fixture
def alert_settings(settings):  # type: ignore[no-untyped-def]
    settings.PIPEDECK_TRIGGERS_TICK = 0.0
    settings.PIPEDECK_ALERT_TIMEOUT = 0.5
    settings.PIPEDECK_ALERT_BACKOFF = 60.0
    settings.PIPEDECK_SITE_URL = "https://pipedeck.example"
    return settings


def add(project, kind: str, target: str, name: str = "", **events: bool) -> AlertDestination:  # type: ignore[no-untyped-def]
    return alerts.add_destination(project, name=name or kind, kind=kind, target=target, **events)


def settled(count: int, timeout: float = 30) -> list[Delivery]:
    """The deliveries once ``count`` of them have had an attempt (sent, failed, or waiting to retry)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(
            Delivery.objects.exclude(state="none")
            .filter(attempts__gte=1)
            .exclude(log=[])
            .select_related("destination")
        )
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    raise AssertionError(
        list(Delivery.objects.values("destination__name", "state", "attempts", "last_error"))
    )


@pytest.mark.django_db(transaction=True)
def test_runs_alert_every_destination_and_a_hanging_one_fails_no_run(
    project, alice, receiver, workers, alert_settings
) -> None:  # type: ignore[no-untyped-def]
    make_pipeline(project, "broken", spec=FAILING)
    make_pipeline(project, "orders")
    events = {"on_failure": True, "on_success": True}
    add(project, "slack", receiver.url + SLACK_PATH, "chat", **events)
    add(project, "json", receiver.url + "/json", "hook", **events)
    add(project, "email", "ops@example.com, lead@example.com", "mail", **events)
    add(project, "json", receiver.url + "/hang", "hangs", **events)
    workers.start("w1")
    failed = start_run(project, alice, ["broken"])
    succeeded = start_run(project, alice, ["orders"])
    rows = settled(8)

    for run in (failed, succeeded):
        run.refresh_from_db()
    assert (failed.state, succeeded.state) == ("failed", "succeeded")  # decided by the pipelines alone
    received = receiver.wait_for(6)
    slack = [r.body for r in received if r.path == SLACK_PATH]
    generic = {r.body["event"]: r.body for r in received if r.path == "/json"}
    assert len(slack) == 2 and set(generic) == {"failure", "success"}
    failure_text = next(b["text"] for b in slack if "failed" in b["text"])
    assert f"<https://pipedeck.example/runs/{failed.pk}/|Run #{failed.pk} of Sales failed>" in failure_text
    assert "Failed: pipeline broken, step transform.bad." in failure_text and "nope" in failure_text
    report = generic["failure"]
    assert report["url"] == f"https://pipedeck.example/runs/{failed.pk}/"
    assert (report["pipeline"], report["step"], report["state"]) == ("broken", "transform.bad", "failed")
    assert "nope" in report["error"] and generic["success"]["run"] == succeeded.pk

    assert sorted(m.subject for m in mail.outbox) == [
        f"[Pipedeck] Run #{failed.pk} of Sales failed",
        f"[Pipedeck] Run #{succeeded.pk} of Sales succeeded",
    ]
    assert mail.outbox[0].to == ["ops@example.com", "lead@example.com"]

    by_name: dict[str, list[Delivery]] = {}
    for row in rows:
        by_name.setdefault(row.destination.name, []).append(row)
    assert {r.state for n in ("chat", "hook", "mail") for r in by_name[n]} == {"sent"}
    for hanging in by_name["hangs"]:  # timed out: waits for its retry, after the backoff
        assert hanging.state == "pending" and hanging.attempts == 1
        assert hanging.last_error == "no answer within 0.5 s"
        assert hanging.next_attempt_at > timezone.now() + dt.timedelta(seconds=50)


def test_a_failed_delivery_is_retried_with_a_doubling_backoff_then_given_up(
    project, receiver, fake_clock, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PIPEDECK_ALERT_ATTEMPTS = 3
    settings.PIPEDECK_ALERT_BACKOFF = 30.0
    make_pipeline(project, "orders")
    add(project, "json", receiver.url + "/json", on_failure=True)
    fake_clock.set(timezone.now())  # the destination hears of runs that finish after it was added
    run = Run.objects.create(
        team=project.team, project=project, spec={"pipelines": {}}, state="failed", finished_at=fake_clock()
    )
    assert alerts.sweep(fake_clock()) == 1 and alerts.sweep(fake_clock()) == 0  # decided once
    receiver.status = 500
    waits = []
    for _ in range(3):
        [outgoing] = delivery.claim_due(fake_clock())
        assert delivery.claim_due(fake_clock()) == []  # claimed: no second worker sends it meanwhile
        ok, detail = delivery.attempt(outgoing)
        row = delivery.record(outgoing.delivery_id, outgoing.attempt, ok, detail, fake_clock())
        if row.next_attempt_at:
            waits.append((row.next_attempt_at - fake_clock()).total_seconds())
            assert delivery.claim_due(fake_clock()) == []  # not before its backoff
            fake_clock.set(row.next_attempt_at)
    assert waits == [30.0, 60.0]
    row.refresh_from_db()
    assert row.state == "failed" and row.attempts == 3 and row.last_error == "answered HTTP 500: ok"
    assert [line["ok"] for line in row.log] == [False, False, False] and row.run == run

    second = Run.objects.create(
        team=project.team, project=project, spec={"pipelines": {}}, state="failed", finished_at=fake_clock()
    )
    alerts.sweep(fake_clock())
    receiver.status = 200
    [outgoing] = delivery.claim_due(fake_clock())
    assert delivery.record(outgoing.delivery_id, 1, *delivery.attempt(outgoing)).state == "sent"
    assert receiver.requests[-1].body["run"] == second.pk


def test_recovery_is_the_first_success_after_a_failure(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    destination = add(project, "email", "ops@example.com", on_failure=True, on_recovery=True)
    now = timezone.now()

    def finished(state: str, minutes: int) -> Run:
        return Run.objects.create(
            team=project.team,
            project=project,
            spec={"pipelines": {}},
            state=state,
            finished_at=now + dt.timedelta(minutes=minutes),
        )

    ok, bad, back, again = (
        finished("succeeded", 1),
        finished("failed", 2),
        finished("succeeded", 3),
        finished("succeeded", 4),
    )
    assert [alerts.event_for(r, destination) for r in (ok, bad, back, again)] == [
        None,
        "failure",
        "recovery",
        None,
    ]
    destination.on_success = True
    assert alerts.event_for(again, destination) == "success"


def test_a_message_masks_the_teams_secrets(project, fake_clock) -> None:  # type: ignore[no-untyped-def]
    set_secret(project.team, "TOKEN", "hunter2-super-secret")
    run = Run.objects.create(
        team=project.team,
        project=project,
        spec={"pipelines": {}},
        state="failed",
        error="login refused for hunter2-super-secret at db",
        finished_at=timezone.now(),
    )
    text = alerts.message(run, "failure")
    assert "hunter2" not in str(text) and "login refused for *** at db" in text["error"]


def test_webhook_urls_are_kept_encrypted_never_shown_nor_logged(
    alice_client, project, receiver, caplog, alert_settings
) -> None:  # type: ignore[no-untyped-def]
    response = alice_client.post(
        "/p/acme/sales/-/triggers/alerts/",
        {"name": "chat", "kind": "slack", "target": receiver.url + SLACK_PATH, "on_failure": "on"},
    )
    assert response.status_code == 302
    destination = AlertDestination.objects.get()
    assert "credential" not in destination.url_ciphertext and destination.url_hint == "http://127.0.0.1/…"
    page = alice_client.get("/p/acme/sales/-/triggers/").content.decode()
    assert "credential" not in page and "http://127.0.0.1/…" in page
    with caplog.at_level(logging.INFO, logger="designer.triggers.delivery"):
        alice_client.post(f"/p/acme/sales/-/triggers/alerts/{destination.pk}/test/")
    assert receiver.wait_for(1)[0].body == {
        "text": "<https://pipedeck.example/p/acme/sales/-/triggers/|Test alert for Sales>\n"
        "Test alert from Pipedeck for project Sales: this destination works."
    }
    assert "credential" not in caplog.text and "answered HTTP 200" in caplog.text
    assert Delivery.objects.get(event="test").state == "sent"
    assert "Test alert sent to chat" in alice_client.get("/p/acme/sales/-/triggers/").content.decode()


def test_send_test_reports_a_failing_destination(alice_client, project, receiver) -> None:  # type: ignore[no-untyped-def]
    destination = add(project, "json", receiver.url + "/json")
    receiver.status = 503
    alice_client.post(f"/p/acme/sales/-/triggers/alerts/{destination.pk}/test/")
    row = Delivery.objects.get(event="test")
    assert row.state == "failed" and row.last_error.startswith("answered HTTP 503")
    assert "failed: answered HTTP 503" in alice_client.get("/p/acme/sales/-/triggers/").content.decode()


def test_alerts_go_only_where_the_sites_egress_policy_allows(project, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PIPEDECK_EGRESS_ALLOW = []
    with pytest.raises(alerts.AlertProblem, match="may not reach it"):
        add(project, "json", "http://127.0.0.1:9/x")
    with pytest.raises(alerts.AlertProblem, match="may not reach it"):
        add(project, "json", "http://169.254.169.254/latest/meta-data")
    with pytest.raises(delivery.DeliveryFailed, match="refused"):
        delivery.post_json("http://localhost:9/hook", {}, 1.0)
    with pytest.raises(alerts.AlertProblem, match="e-mail address"):
        add(project, "email", "not-an-address")


def test_key_rotation_reencrypts_signing_secrets_and_alert_urls(param_project, settings) -> None:  # type: ignore[no-untyped-def]
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from designer.triggers import webhooks

    old = Fernet.generate_key().decode()
    settings.PIPEDECK_SECRET_KEYS = [old]
    settings.PIPEDECK_EGRESS_ALLOW = ["hooks.example.com"]
    webhook, _, secret = webhooks.create_webhook(param_project, "signed", signed=True)
    destination = add(param_project, "slack", "https://hooks.example.com" + SLACK_PATH)
    new = Fernet.generate_key().decode()
    settings.PIPEDECK_SECRET_KEYS = [new, old]
    call_command("rotate_secret_key", stdout=(out := io.StringIO()))
    assert "and 2 webhook secret(s) and alert URL(s)" in out.getvalue()
    settings.PIPEDECK_SECRET_KEYS = [new]  # the old key can go
    webhook.refresh_from_db()
    destination.refresh_from_db()
    assert webhooks.signature_ok(webhook, b"{}", webhooks.sign(secret, b"{}"))
    assert alerts.target_of(destination) == "https://hooks.example.com" + SLACK_PATH
