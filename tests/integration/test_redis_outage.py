"""Redis down for 30 s on the scale-out mode (a TCP proxy between the site and Redis is cut and refuses):
pages and runs go on; a run's websocket says "paused" and falls back to the database; when Redis is back
it says "resumed", and the client has every event exactly once, in order (sequence numbers)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.cluster import Cluster, running_cluster, wait_until
from tests.integration.tcpproxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

OUTAGE = 30.0
#: a project of chained pipelines: a step starts and finishes every ~1.5 s for about a minute
TICKING = """
import json
from designer.models import Pipeline, PipelineVersion, Project, Team
project = Project.objects.create(team=Team.objects.get(), name="ticking", slug="ticking", concurrency=1)
for i in range(40):
    spec = {"type": "ETL", "needs": [f"p{i - 1:02d}"] if i else [], "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": 1.5}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]}}}
    p = Pipeline.objects.create(project=project, name=f"p{i:02d}", slug=f"p{i:02d}", spec=spec, is_valid=True)
    PipelineVersion.objects.create(pipeline=p, number=1, spec=spec)
print(json.dumps(project.pk))
"""


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 6379))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def site(redis_proxy: TcpProxy) -> Iterator[Cluster]:
    with running_cluster({"r1": 30.0}, redis_port=redis_proxy.port) as c:
        c.shell(TICKING)
        yield c


async def _follow(site: Cluster, run_id: int, proxy: TcpProxy) -> dict[str, Any]:
    import websockets

    headers = {"Cookie": f"sessionid={site.session}", "Origin": f"http://127.0.0.1:{site.port}"}
    url = f"ws://127.0.0.1:{site.port}/ws/runs/{run_id}/?after=0"
    seqs: list[int] = []
    notices: list[tuple[str, int]] = []  # (paused/resumed, events received before it)
    during_outage = 0
    page_status = 0
    async with websockets.connect(url, additional_headers=headers) as ws:
        outage_started = outage_ended = 0.0
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message["type"] in ("paused", "resumed"):
                notices.append((message["type"], len(seqs)))
            elif message["type"] == "events":
                seqs += [e["seq"] for e in message["events"]]
                if outage_started and not outage_ended:
                    during_outage += len(message["events"])
                if any(e["kind"] == "run_finished" for e in message["events"]):
                    break
            if len(seqs) >= 10 and not outage_started:
                proxy.refuse = True
                proxy.cut()
                outage_started = time.monotonic()
            if outage_started and not outage_ended and time.monotonic() - outage_started >= OUTAGE:
                page_status = await asyncio.to_thread(_page_status, site, run_id)
                proxy.refuse = False
                outage_ended = time.monotonic()
    return {"seqs": seqs, "notices": notices, "during_outage": during_outage, "page_status": page_status}


def _page_status(site: Cluster, run_id: int) -> int:
    cookies = {"sessionid": site.session}
    return httpx.get(f"http://127.0.0.1:{site.port}/runs/{run_id}/", cookies=cookies, timeout=30).status_code


def test_a_redis_outage_pauses_live_updates_and_loses_no_event(site: Cluster, redis_proxy: TcpProxy) -> None:
    run_id = site.enqueue("ticking", 1)[0]
    followed = asyncio.run(_follow(site, run_id, redis_proxy))
    seqs = followed["seqs"]
    assert seqs == list(range(1, len(seqs) + 1)), "an event was lost or shown twice"
    assert [kind for kind, _ in followed["notices"]] == ["paused", "resumed"]
    assert followed["during_outage"] > 0, "nothing reached the page while Redis was down"
    assert followed["page_status"] == 200, "pages did not go on while Redis was down"
    wait_until(lambda: site.unfinished([run_id]) == 0, timeout=120)
    state, last_seq = site.sql("SELECT state, last_seq FROM designer_run WHERE id = %s", run_id)[0]
    assert state == "succeeded" and last_seq == len(seqs)
