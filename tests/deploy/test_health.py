"""Health endpoints: liveness always answers; readiness names what is missing."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from designer.runs import queue
from designer.runs.models import WorkerBeat

pytestmark = pytest.mark.django_db


def test_liveness_answers_without_login() -> None:
    response = Client().get("/-/live")
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_needs_a_live_worker() -> None:
    response = Client().get("/-/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["channel_layer"]["ok"] is True
    assert body["checks"]["workers"] == {"ok": False, "alive": 0}

    queue.beat("w1", lease=30)
    response = Client().get("/-/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"] == {"ok": True, "alive": 1}


def test_a_worker_whose_beat_is_older_than_its_lease_does_not_count() -> None:
    queue.beat("old", lease=1)
    from datetime import timedelta

    from django.db.models import F

    WorkerBeat.objects.update(beat_at=F("beat_at") - timedelta(seconds=5))
    assert queue.live_workers() == 0
    queue.forget_worker("old")
    assert not WorkerBeat.objects.exists()


def test_readiness_reports_a_database_that_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from designer import health

    def broken() -> dict[str, object]:
        raise ConnectionError("refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    queue.beat("w1", lease=30)
    response = Client().get("/-/ready")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["database"] == {"ok": False, "error": "ConnectionError"}
