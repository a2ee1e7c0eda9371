"""Load on the scale-out mode (PostgreSQL, Redis, ``manage.py worker`` and Daphne processes, all real).

- L1 / L2 live events to many browsers: 1,000 authenticated websocket clients follow 100 runs at once (10
  each), every run's step reporting progress 50 times a second for 10 s (``bench/plugins_load.py``). L1:
  one Daphne process on the Redis layer; L2: two behind one port (nginx, round robin). Each client connects
  to ``/ws/runs/<id>/?after=0`` before the runs are claimed and, like ``static/runs/run_socket.js``,
  reconnects with ``?after=<last seq>`` when its socket drops. Figures: events delivered (distinct seqs a
  client received / events stored, every client; anything but 1.0 fails the module), latency from the
  engine's event timestamp to the client reading the message (p50, p99 over every event x client), and the
  Daphne processes' RSS with the clients connected minus before, per connection. The clients are
  ``bench/runs.py``'s lean ones, in this process, on the same 2 cores as the site.
- L3 run throughput: runs of a 2-step pipeline posted to the Run form (htmx, logged in) with 1, 2 and 4
  workers of concurrency 4: runs per minute over a batch posted at once (4 requests at a time), then
  click-to-first-step p50 / p95 of runs posted at a steady 80% of that rate (the batch's own latencies are
  its queue). Every run must succeed. Kestra's figure is its published one, not measured here.

Each part has its own database, cloned from one migrated template; Redis db 11 (flushed before and after;
``PIPEDECK_BENCH_LOAD_REDIS_URL`` overrides it, ``PIPEDECK_BENCH_POSTGRES_URL`` the server).
``python -m bench load`` (``--quick``: 100 clients on 10 runs of 5 s, 30 + 15 runs per worker count).
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import BenchRow, WrongResult, check, login_session, shown
from bench.runs import ROOT, LiveServer, _pct, _spec, _Watcher
from bench.runs_scaleout import POSTGRES, _database_url, _reachable

REDIS = os.environ.get("PIPEDECK_BENCH_LOAD_REDIS_URL", "redis://127.0.0.1:6379/11")
NGINX = "/usr/sbin/nginx"
PER_SECOND = 50
KESTRA = "Kestra OSS (published, 4 vCPU)"


@dataclass(frozen=True)
class Plan:
    clients: int
    runs: int
    #: how long each run's step reports progress
    seconds: float
    #: runs posted at once per worker count (runs per minute), then at 80% of that rate (latency)
    batch: int
    paced: int
    worker_counts: tuple[int, ...] = (1, 2, 4)


FULL = Plan(clients=1000, runs=100, seconds=10.0, batch=200, paced=100)
QUICK = Plan(clients=100, runs=10, seconds=5.0, batch=30, paced=15)


# -- the site ----------------------------------------------------------------------------------------------
def _psql(query: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(_database_url(database), autocommit=True) as conn:
        conn.execute(query)  # type: ignore[arg-type]


def _template(seconds: float) -> tuple[str, dict[str, str]]:
    """A migrated database holding the bench's user, team, projects and session: its name, the fixtures."""
    name = f"pipedeck_load_{uuid.uuid4().hex[:8]}"
    _psql(f'CREATE DATABASE "{name}"')
    os.environ.update(
        DJANGO_SETTINGS_MODULE="designer.settings",
        DATABASE_URL=_database_url(name),
        REDIS_URL=REDIS,
        PIPEDECK_INPROCESS_WORKER="false",
    )
    os.environ.pop("PIPEDECK_SQLITE", None)
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    fx = _fixtures(seconds)
    connections.close_all()  # a template must have no connection when it is copied
    return name, fx


def _fixtures(seconds: float) -> dict[str, str]:
    from django.contrib.auth.models import User

    from designer.editor.models import Pipeline, PipelineVersion, Project
    from designer.teams.models import Membership, Team

    user = User.objects.create_user("loader", password=None)
    team = Team.objects.create(name="Load", slug="load")
    Membership.objects.create(team=team, user=user, role="owner")
    ticks = _spec(0.0)
    ticks["phases"]["extract"]["steps"] = [
        {"id": "ticks", "plugin": "bench_ticks", "args": {"per_second": PER_SECOND, "seconds": seconds}}
    ]
    for slug, spec in {"ticks": ticks, "pair": _spec(0.0)}.items():
        project = Project.objects.create(team=team, name=slug, slug=slug, concurrency=1)
        pipeline = Pipeline.objects.create(
            project=project, name="main", slug="main", spec=spec, is_valid=True
        )
        PipelineVersion.objects.create(pipeline=pipeline, number=1, spec=spec)
    return {"team": team.slug, "session": login_session(user)}


class Site:
    """A database cloned from the template, and the Daphne, worker and nginx processes started on it."""

    def __init__(self, template: str) -> None:
        self.database = f"{template}_{uuid.uuid4().hex[:4]}"
        _psql(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
        self.env = {
            **os.environ,
            "DATABASE_URL": _database_url(self.database),
            "PIPEDECK_PLUGIN_MODULES": "bench.plugins_load",
        }
        self.dir = Path(tempfile.mkdtemp(prefix="pipedeck-load-"))
        self.servers: list[LiveServer] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.nginx: subprocess.Popen[bytes] | None = None

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def serve(self, daphnes: int) -> int:
        """Start ``daphnes`` Daphne processes (more than one: behind nginx); the port browsers use."""
        self.servers = [LiveServer(self.env) for _ in range(daphnes)]
        if daphnes == 1:
            return self.servers[0].port
        return self._balance([s.port for s in self.servers])

    def _balance(self, ports: list[int]) -> int:
        port = _free_port()
        upstreams = " ".join(f"server 127.0.0.1:{p};" for p in ports)
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF % {"dir": self.dir, "port": port, "upstreams": upstreams})
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable(f"http://127.0.0.1:{port}", port):
            if time.monotonic() > deadline or self.nginx.poll() is not None:
                raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text()[-2000:]}")
            time.sleep(0.05)
        return port

    def stop_serving(self) -> None:
        if self.nginx is not None:
            _end([self.nginx])
            self.nginx = None
        for server in self.servers:
            server.stop()
        self.servers = []

    def start_workers(self, count: int, concurrency: int) -> None:
        """``count`` worker processes; returns once each has started its fork server and said it is alive."""
        for n in range(count):
            command = [sys.executable, "manage.py", "worker", "--concurrency", str(concurrency)]
            log = open(self.dir / f"worker-{len(self.workers)}-{n}.log", "ab")  # noqa: SIM115 - the child's
            self.workers.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stderr=log))
            log.close()
        deadline = time.monotonic() + 120
        while self.sql("SELECT count(*) FROM designer_workerbeat")[0][0] < count:
            if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                raise RuntimeError(f"the workers did not start (logs in {self.dir})")
            time.sleep(0.1)

    def stop_workers(self) -> None:
        _end(self.workers)
        self.workers = []

    def __enter__(self) -> Site:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Stop every process, drop the database; the processes' logs stay when something failed."""
        self.stop_workers()
        self.stop_serving()
        _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if kind is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"load: the processes' logs are in {self.dir}", file=sys.stderr)


#: one worker process, round robin over the Daphne processes, websockets passed through
NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid %(dir)s/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream daphne { %(upstreams)s }
    server {
        listen 127.0.0.1:%(port)s backlog=4096;
        location / {
            proxy_pass http://daphne;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }
    }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _end(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the browsers ------------------------------------------------------------------------------------------
async def _browser(base: str, fx: dict[str, str]) -> tuple[Any, str]:
    """A logged-in HTTP client of the site and its CSRF token."""
    import httpx

    client = httpx.AsyncClient(base_url=base, cookies={"sessionid": fx["session"]}, timeout=120)
    await client.get(f"/t/{fx['team']}/runs/")  # sets csrftoken
    return client, client.cookies["csrftoken"]


async def _click_run(client: Any, token: str, path: str) -> tuple[float, int]:
    """Post the Run form as htmx does: (when it was sent, the new run's id)."""
    sent = time.time()
    response = await client.post(path, data={"csrfmiddlewaretoken": token}, headers={"HX-Request": "true"})
    target = response.headers.get("HX-Redirect", "")
    if not target:
        raise WrongResult(
            f"the Run form answered {response.status_code} without a run: {response.text[:300]}"
        )
    return sent, int(target.rstrip("/").rsplit("/", 1)[1])


async def post_runs(base: str, fx: dict[str, str], project: str, count: int, rate: float = 0.0) -> list[Any]:
    """``count`` runs of ``project`` through the Run form: 4 requests at a time, or one every 1/``rate`` s."""
    client, token = await _browser(base, fx)
    path = f"/p/{fx['team']}/{project}/-/run/"
    at_once = asyncio.Semaphore(4)
    start = time.monotonic()

    async def click(n: int) -> tuple[float, int]:
        if rate:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            return await _click_run(client, token, path)
        async with at_once:
            return await _click_run(client, token, path)

    try:
        return list(await asyncio.gather(*(click(n) for n in range(count))))
    finally:
        await client.aclose()


#: the first and the last seq of an events message (consecutive in between), without parsing it all
_SEQ = re.compile(r'"seq": ?(\d+)')


class _Tracked(_Watcher):
    """``bench/runs.py``'s lean client, handing each message's text to ``seen`` after stamping it."""

    def __init__(self, uri: str, headers: dict[str, str], seen: Any) -> None:
        super().__init__(uri, headers)
        self.seen = seen
        self.read = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        while self.read < len(self.messages):
            self.seen(self.messages[self.read][1])
            self.read += 1


class _Follower:
    """One run page, as ``static/runs/run_socket.js`` follows a run: a gap in the seqs it reads is
    fetched from ``/runs/<id>/events/?after=<seq>``; a dropped socket reconnects with ``?after=<last seq>``
    (250 ms, doubling up to 5 s, with jitter). Ends with the run's ``run_finished`` event."""

    def __init__(self, port: int, run_id: int, fx: dict[str, str], opening: asyncio.Semaphore) -> None:
        self.port, self.run_id, self.opening = port, run_id, opening
        self.headers = {"Cookie": f"sessionid={fx['session']}", "Origin": f"http://127.0.0.1:{port}"}
        self.messages: list[tuple[float, str]] = []  # (time read, text) of the sockets' messages
        self.fetched: list[tuple[float, list[dict[str, Any]]]] = []  # (time read, events) of fetched pages
        self.watcher: _Tracked | None = None
        self.high = 0  # the highest seq read
        self.ended = asyncio.Event()
        self.fetches: list[asyncio.Task[None]] = []
        self.drops = self.gaps = 0
        self.http: Any = None  # the page's HTTP client (``watch_runs`` gives it)

    async def connect(self) -> None:
        uri = f"ws://127.0.0.1:{self.port}/ws/runs/{self.run_id}/?after={self.high}"
        loop = asyncio.get_running_loop()
        watcher = _Tracked(uri, self.headers, self._seen)
        async with self.opening:
            await loop.create_connection(lambda: watcher, "127.0.0.1", self.port)
            await asyncio.wait_for(watcher.opened, 60)
        self.watcher = watcher

    def _seen(self, text: str) -> None:
        if '"run_finished"' in text:
            self.ended.set()
        first, last = _SEQ.search(text), text.rfind('"seq":')
        if first is None:  # "synced" and the like
            return
        high = int(_SEQ.match(text, last).group(1))  # type: ignore[union-attr]
        if int(first.group(1)) > self.high + 1:  # events lost on the way: fetch them, as the page does
            self.gaps += 1
            self.fetches.append(asyncio.get_running_loop().create_task(self.fetch(self.high)))
        self.high = max(self.high, high)

    async def fetch(self, after: int) -> None:
        """The stored events after ``after``, page by page."""
        while True:
            response = await self.http.get(f"/runs/{self.run_id}/events/", params={"after": after})
            data = response.json()
            if data["events"]:
                self.fetched.append((time.time(), data["events"]))
                after = data["events"][-1]["seq"]
                if any(e["kind"] == "run_finished" for e in data["events"]):
                    self.ended.set()
            if not data["more"]:
                return

    async def synced(self) -> None:
        while self.watcher is None or not any('"synced"' in text for _, text in self.watcher.messages):
            await asyncio.sleep(0.05)

    async def follow(self) -> None:
        """Until the run's last event has come, over the socket or fetched."""
        retry = 0.25
        while not self.ended.is_set():
            if self.watcher is not None:
                waits = [asyncio.ensure_future(e.wait()) for e in (self.watcher.finished, self.ended)]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()
                if self.ended.is_set():
                    break
                self._keep()
                self.drops += 1
            await asyncio.sleep(retry * random.uniform(0.8, 1.2))
            retry = min(retry * 2, 5.0)
            try:
                await self.connect()
            except Exception:  # refused, cut or answered with an error during the handshake: again
                self.watcher = None
        self._keep()
        await asyncio.gather(*self.fetches)

    def _keep(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.messages += self.watcher.messages
            self.watcher = None


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _connect_all(followers: list[_Follower]) -> None:
    async def connect(follower: _Follower) -> None:
        for attempt in range(5):  # a reset during the handshake is tried again: measured is the delivery
            try:
                return await follower.connect()
            except (ConnectionError, TimeoutError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))

    await asyncio.gather(*(connect(f) for f in followers))
    await asyncio.wait_for(asyncio.gather(*(f.synced() for f in followers)), 300)


def _stuck(site: Site, left: list[_Follower]) -> str:
    """Where the stuck clients stopped: per run (at most 8), the seqs its clients last read and the last
    seq the database holds (a whole run's clients stopping at one seq: its group stream stopped)."""
    runs: dict[int, list[int]] = {}
    for follower in left:
        runs.setdefault(follower.run_id, []).append(follower.high)
    last = dict(site.sql("SELECT id, last_seq FROM designer_run WHERE id = ANY(%s)", list(runs)))
    shown = [f"run {r}: clients at {sorted(set(h))} of {last.get(r)}" for r, h in list(runs.items())[:8]]
    return f"{len(runs)} runs; " + "; ".join(shown)


async def _follow_to_the_end(site: Site, followers: list[_Follower], run_ids: list[int], plan: Plan) -> int:
    """Start the workers (the runs start now, all at once) and follow every run to its end; a follower
    whose run ended in the database 15 s ago fetches the rest (its last message was lost): how many did."""
    following = asyncio.gather(*(f.follow() for f in followers))
    try:
        await asyncio.to_thread(site.start_workers, 2, math.ceil(plan.runs / 2))
        await asyncio.to_thread(_wait_claimed, site, run_ids, 120)
        await asyncio.to_thread(_wait_finished, site, run_ids, plan.seconds + 240)
        await asyncio.wait([following], timeout=15)
        stuck = [f for f in followers if not f.ended.is_set()]
        for follower in stuck:
            follower.fetches.append(asyncio.get_running_loop().create_task(follower.fetch(follower.high)))
        await asyncio.wait_for(following, 60)
    except TimeoutError:
        left = [f for f in followers if not f.ended.is_set()]
        raise WrongResult(
            f"{len(left)} of {len(followers)} clients never saw their run end; {_stuck(site, left)}"
        ) from None
    finally:
        following.cancel()
    return len(stuck)


async def watch_runs(
    site: Site, port: int, fx: dict[str, str], run_ids: list[int], plan: Plan
) -> dict[str, Any]:
    """Connect ``plan.clients`` followers to the queued runs, then start the workers and follow to the end:
    the followers, the server processes' RSS before and after connecting (KiB), the tails fetched."""
    import httpx

    opening = asyncio.Semaphore(25)  # handshakes at once: more overflow Daphne's accept queue
    pids = [s.proc.pid for s in site.servers]
    warm = [_Follower(port, run_ids[0], fx, opening) for _ in range(10)]
    await _connect_all(warm)  # the websocket path's first use allocates what every later one reuses
    for follower in warm:
        follower._keep()
    await asyncio.sleep(1.0)
    before = sum(_rss_kib(pid) for pid in pids)
    followers = [_Follower(port, run_ids[n % len(run_ids)], fx, opening) for n in range(plan.clients)]
    await _connect_all(followers)
    await asyncio.sleep(1.0)
    after = sum(_rss_kib(pid) for pid in pids)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", cookies={"sessionid": fx["session"]}, timeout=120
    ) as http:
        for follower in followers:
            follower.http = http
        gc.collect()
        gc.disable()  # a collection here would delay every client's stamp: measure the server
        try:
            tails = await _follow_to_the_end(site, followers, run_ids, plan)
        finally:
            gc.enable()
    return {"followers": followers, "before": before, "after": after, "tails": tails}


# -- the figures -------------------------------------------------------------------------------------------
def _check_succeeded(site: Site, ids: list[int], what: str) -> None:
    states = dict(site.sql("SELECT state, count(*) FROM designer_run WHERE id = ANY(%s) GROUP BY state", ids))
    check(f"{what}: states of the {len(ids)} runs", states, {"succeeded": len(ids)})


def _wait_claimed(site: Site, ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state = 'queued'"
    while (left := site.sql(query, ids)[0][0]) > 0:
        if time.monotonic() > deadline:
            raise WrongResult(
                f"{left} of {len(ids)} runs not claimed after {timeout:.0f} s (logs: {site.dir})"
            )
        time.sleep(0.2)


def _wait_finished(site: Site, ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM designer_run WHERE id = ANY(%s) AND state IN ('queued', 'running')"
    while (left := site.sql(query, ids)[0][0]) > 0:
        if time.monotonic() > deadline:
            raise WrongResult(f"{left} of {len(ids)} runs still unfinished after {timeout:.0f} s")
        time.sleep(0.1)


def stored_events(site: Site, ids: list[int], seconds: float) -> tuple[dict[int, int], float]:
    """Events stored per run (checked gapless, with every progress tick), and the median rate of ticks."""
    rows = site.sql(
        "SELECT r.id, r.last_seq, count(e.id), count(DISTINCT e.seq), min(e.seq), max(e.seq), "
        "count(e.id) FILTER (WHERE e.kind = 'step_progress'), "
        "extract(epoch FROM max(e.ts) FILTER (WHERE e.kind = 'step_progress') "
        "- min(e.ts) FILTER (WHERE e.kind = 'step_progress')) "
        "FROM designer_run r JOIN designer_runevent e ON e.run_id = r.id WHERE r.id = ANY(%s) GROUP BY r.id",
        ids,
    )
    ticks = round(PER_SECOND * seconds)
    check("runs with stored events", len(rows), len(ids))
    for run_id, last, count, distinct, first, highest, progress, _ in rows:
        check(
            f"run {run_id}: stored seqs (last, count, distinct, first, highest)",
            (count, distinct, first, highest),
            (last, last, 1, last),
        )
        check(f"run {run_id}: progress events stored", progress, ticks)
    rates = sorted((ticks - 1) / float(span) for *_, span in rows if span)
    return {row[0]: row[1] for row in rows}, rates[len(rates) // 2]


def _most_at_once(spans: list[tuple[Any, Any]]) -> int:
    """The most runs that were running at the same moment."""
    changes = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in changes:
        running += change
        most = max(most, running)
    return most


def tally(followers: list[_Follower], stored: dict[int, int]) -> dict[str, Any]:
    """Events delivered / events stored over every client, over the socket alone and with what the clients
    fetched; each (event, client)'s latency. Raises WrongResult when a client lacks an event even so."""
    latencies: list[float] = []
    live = delivered = expected = short = 0
    example = ""
    for follower in followers:
        first_read: dict[int, float] = {}
        for when, text in follower.messages:
            for event in json.loads(text).get("events", ()):
                first_read.setdefault(event["seq"], when - event["ts"])
        live += len(first_read)
        for when, events in follower.fetched:
            for event in events:
                first_read[event["seq"]] = min(first_read.get(event["seq"], math.inf), when - event["ts"])
        latencies += first_read.values()
        wanted = set(range(1, stored[follower.run_id] + 1))
        expected += len(wanted)
        delivered += len(wanted & first_read.keys())
        if wanted - first_read.keys():
            short += 1
            example = f"run {follower.run_id} lacks seqs {sorted(wanted - first_read.keys())[:10]}"
    if short:
        raise WrongResult(f"{short} of {len(followers)} clients missed events ({example})")
    return {"fraction": delivered / expected, "live": live / expected, "latencies": latencies}


def bench_watchers(template: str, fx: dict[str, str], plan: Plan, daphnes: int) -> dict[str, Any]:
    """L1 (one Daphne) or L2 (two behind nginx): the figures of one pass of the load."""
    with Site(template) as site:
        port = site.serve(daphnes)
        posted = asyncio.run(post_runs(f"http://127.0.0.1:{port}", fx, "ticks", plan.runs))
        ids = [run_id for _, run_id in posted]
        watched = asyncio.run(watch_runs(site, port, fx, ids, plan))
        _wait_finished(site, ids, 60)
        _check_succeeded(site, ids, "load")
        stored, rate = stored_events(site, ids, plan.seconds)
        spans = site.sql("SELECT started_at, finished_at FROM designer_run WHERE id = ANY(%s)", ids)
    followers = watched["followers"]
    return {
        **tally(followers, stored),
        "per_connection": (watched["after"] - watched["before"]) / len(followers),
        "events": sum(stored.values()),
        "rate": rate,
        "drops": sum(f.drops for f in followers),
        "gaps": sum(f.gaps for f in followers),
        "tails": watched["tails"],
        "concurrent": _most_at_once(spans),
    }


def bench_throughput(site: Site, fx: dict[str, str], base: str, workers: int, plan: Plan) -> dict[str, Any]:
    """L3 with ``workers`` worker processes (concurrency 4): runs per minute, then click-to-first-step."""
    site.start_workers(workers, 4)
    try:
        warm = asyncio.run(post_runs(base, fx, "pair", 2 * workers))  # every fork server's first child
        _wait_finished(site, [i for _, i in warm], 60)
        batch = asyncio.run(post_runs(base, fx, "pair", plan.batch))
        ids = [i for _, i in batch]
        posted_in = max(s for s, _ in batch) - min(s for s, _ in batch)
        _wait_finished(site, ids, 600)
        _check_succeeded(site, ids, f"{workers} worker(s), batch")
        last = site.sql("SELECT max(finished_at) FROM designer_run WHERE id = ANY(%s)", ids)[0][0]
        per_minute = 60 * len(ids) / (last.timestamp() - min(s for s, _ in batch))
        paced = asyncio.run(post_runs(base, fx, "pair", plan.paced, rate=0.8 * per_minute / 60))
        ids = [i for _, i in paced]
        _wait_finished(site, ids, 600)
        _check_succeeded(site, ids, f"{workers} worker(s), paced")
    finally:
        site.stop_workers()
    started = dict(
        site.sql(
            "SELECT run_id, min(ts) FROM designer_runevent "
            "WHERE kind = 'step_started' AND run_id = ANY(%s) GROUP BY run_id",
            ids,
        )
    )
    latencies = [started[i].timestamp() - sent for sent, i in paced]
    return {"per_minute": per_minute, "latencies": latencies, "posted_in": posted_in}


# -- the rows ----------------------------------------------------------------------------------------------
def _raise_open_files(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (inherited by the servers it starts) toward ``wanted``,
    within the hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if ceiling > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft = ceiling
    return soft


def _watcher_rows(label: str, figures: dict[str, Any], plan: Plan, note: str) -> list[BenchRow]:
    ms = 1000.0
    what = f"{label}, {plan.clients} clients, {plan.runs} runs x {PER_SECOND} events/s"
    fraction = figures["fraction"]
    return [
        BenchRow(
            f"{what}: delivered",
            "of stored",
            fraction,
            fraction,
            goal="1.0",
            passed=fraction == 1.0,
            note=(
                f"{figures['events']:,} events stored ({figures['rate']:.1f}/s per run, at most "
                f"{figures['concurrent']} runs at once); {figures['drops']} reconnects, {figures['gaps']} "
                f"gaps and {figures['tails']} lost endings fetched as run_socket.js does; {note}"
            ),
        ),
        shown(f"{what}: delivered by the socket alone", "of stored", [figures["live"]]),
        shown(f"{what}: latency p50", "ms", [_pct(figures["latencies"], 0.5) * ms]),
        shown(f"{what}: latency p99", "ms", [_pct(figures["latencies"], 0.99) * ms]),
        shown(f"{what}: RSS per connection", "KiB", [figures["per_connection"]]),
    ]


def _throughput_rows(workers: int, figures: dict[str, Any], plan: Plan) -> list[BenchRow]:
    label = f"L3 {workers} worker(s) x 4, 2-step runs from the Run form"
    ordered = sorted(figures["latencies"])
    return [
        shown(
            f"{label}: runs per minute",
            "runs/min",
            [figures["per_minute"]],
            versus=KESTRA,
            theirs=[1500.0],
            note=f"{plan.batch} runs posted in {figures['posted_in']:.1f} s, 4 requests at a time",
        ),
        shown(
            f"{label}: click -> first step p50 at 80% of that",
            "s",
            [_pct(ordered, 0.5)],
            versus=KESTRA,
            theirs=[0.9],
        ),
        shown(f"{label}: click -> first step p95 at 80% of that", "s", [_pct(ordered, 0.95)]),
    ]


def run(quick: bool = False) -> list[BenchRow]:
    """L1, L2 and L3; no rows when PostgreSQL or Redis is missing."""
    if not (_reachable(POSTGRES, 5432) and _reachable(REDIS, 6379)):
        print(f"load: PostgreSQL ({POSTGRES}) or Redis ({REDIS}) unreachable: skipped", file=sys.stderr)
        return []
    plan = QUICK if quick else FULL
    # each client: a socket here, one in Daphne, two in nginx
    limit = _raise_open_files(2 * plan.clients + 1024)
    held = min(plan.clients, limit - 512)
    note = f"RLIMIT_NOFILE {limit}"
    if held < plan.clients:
        note += f": {held} clients of {plan.clients} fit"
        plan = Plan(held, plan.runs, plan.seconds, plan.batch, plan.paced, plan.worker_counts)
    subprocess.run(["redis-cli", "-u", REDIS, "FLUSHDB"], capture_output=True, check=True)
    template, fx = _template(plan.seconds)
    rows: list[BenchRow] = []
    try:
        for label, daphnes in (("L1 1 Daphne", 1), ("L2 2 Daphnes behind nginx", 2)):
            rows += _watcher_rows(label, bench_watchers(template, fx, plan, daphnes), plan, note)
        with Site(template) as site:
            base = f"http://127.0.0.1:{site.serve(1)}"
            for workers in plan.worker_counts:
                rows += _throughput_rows(workers, bench_throughput(site, fx, base, workers, plan), plan)
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        subprocess.run(["redis-cli", "-u", REDIS, "FLUSHDB"], capture_output=True)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
