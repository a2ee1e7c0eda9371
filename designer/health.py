"""Health endpoints for a load balancer or an orchestrator: JSON, no login, nothing secret in them.

- ``/-/live``: the process answers (liveness).
- ``/-/ready``: it can serve: the database answers, the channel layer delivers a message, and at least one
  worker beat within its lease (readiness); 503 naming what failed otherwise.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from designer.runs import queue

#: seconds the channel layer has to deliver the readiness probe's message
LAYER_TIMEOUT = 2.0


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process answers."""
    return JsonResponse({"status": "alive"})


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.probe"})
    await asyncio.wait_for(layer.receive(channel), LAYER_TIMEOUT)


def _layer() -> dict[str, Any]:
    started = time.perf_counter()
    async_to_sync(_layer_round_trip)()
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _workers() -> dict[str, Any]:
    alive = queue.live_workers()
    return {"ok": alive > 0, "alive": alive}


CHECKS = {"database": _database, "channel_layer": _layer, "workers": _workers}


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Every dependency answers; 503 with the failing checks otherwise."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # a dependency that is down is the answer, not an error of this view
            results[name] = {"ok": False, "error": type(exc).__name__}
    ok = all(result["ok"] for result in results.values())
    return JsonResponse(
        {"status": "ready" if ok else "not ready", "checks": results}, status=200 if ok else 503
    )


urlpatterns = [
    path("-/live", live, name="designer-live"),
    path("-/ready", ready, name="designer-ready"),
]
