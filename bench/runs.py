"""Runs on the embedded default (one Daphne process with its in-process worker, SQLite, in-memory layer).

- Run button -> first step started: POST of the Run form to a live Daphne, until the engine's
  ``step_started`` event (its timestamp), median of N runs (target < 200 ms).
- Event -> websocket message: 100 clients watch one run of 21 chained pipelines (about 230 events in
  ~22 bursts over 0.5 s); latency from the engine's event timestamp to the moment each client reads the
  message from its socket, p50 and p99 over every (event, client) pair, pooled over 3 runs (1 with
  ``--quick``) (target p99 < 50 ms). The "ideal" column is the same figure with a single client.
  The clients are lean (websockets' Sans-I/O protocol on asyncio transports, one process) and stamp a
  message before parsing it, so the figure is the server's delivery and not the bench's JSON parsing
  (``websockets.connect`` + ``json.loads`` per message first made the 100th client wait for the other
  99), and this process does not collect garbage while it listens (a collection here would delay every
  client's stamp). They share this machine's 2 cores with the server, like everything else measured here.
- Runs per second one worker sustains with trivial pipelines (in-process worker, concurrency 4).

``python -m bench runs`` (``--quick`` for fewer runs).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import BenchRow, login_session, shown, under

ROOT = Path(__file__).resolve().parents[1]


def _setup_django() -> Path:
    """Django on a throwaway SQLite file (or the one an earlier bench module configured)."""
    if "DJANGO_SETTINGS_MODULE" not in os.environ or not os.environ.get("PIPEDECK_SQLITE"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "designer.settings")
        os.environ["PIPEDECK_SQLITE"] = str(
            Path(tempfile.mkdtemp(prefix="pipedeck-bench-")) / "bench.sqlite3"
        )
    os.environ.setdefault("PIPEDECK_INPROCESS_WORKER", "true")
    import django
    from django.conf import settings

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return Path(settings.DATABASES["default"]["NAME"])


def _spec(seconds: float) -> dict[str, Any]:
    return {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": seconds}}]},
            "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
        },
    }


def _fixtures() -> dict[str, Any]:
    from django.contrib.auth.models import User

    from designer.editor.models import Pipeline, PipelineVersion, Project
    from designer.teams.models import Membership, Team

    suffix = str(int(time.time() * 1000))
    user = User.objects.create_user(f"bench{suffix}", password=None)
    team = Team.objects.create(name=f"Bench {suffix}", slug=f"bench-{suffix}")
    Membership.objects.create(team=team, user=user, role="owner")
    projects = {}
    for slug, specs in {
        "trivial": {"main": _spec(0.0)},
        # events spread over time: 20 chained pipelines, one after the other
        "chain": {
            "head": _spec(0.02),
            **{
                f"p{i:02d}": {**_spec(0.02), "needs": ["head" if i == 0 else f"p{i - 1:02d}"]}
                for i in range(20)
            },
        },
    }.items():
        project = Project.objects.create(team=team, name=slug, slug=slug, concurrency=1)
        for name, spec in specs.items():
            pipeline = Pipeline.objects.create(
                project=project, name=name, slug=name, spec=spec, is_valid=True
            )
            PipelineVersion.objects.create(pipeline=pipeline, number=1, spec=spec)
        projects[slug] = project
    return {"user": user, "team": team, "projects": projects, "session": login_session(user)}


def embedded_env(db: Path) -> dict[str, str]:
    """The embedded default's environment: the bench's SQLite file, the in-process worker, no Redis."""
    env = {**os.environ, "PIPEDECK_SQLITE": str(db), "PIPEDECK_INPROCESS_WORKER": "true"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


class LiveServer:
    """``daphne designer.asgi:application`` on a free port, with the given environment."""

    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "designer.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _first_step_started(run_id: int, timeout: float = 10.0) -> float:
    from designer.runs.models import RunEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = RunEvent.objects.filter(run_id=run_id, kind="step_started").order_by("seq").first()
        if event is not None:
            return event.ts.timestamp()
        time.sleep(0.005)
    raise RuntimeError(f"run {run_id} did not start a step within {timeout} s")


def bench_button_to_first_step(server: LiveServer, fx: dict[str, Any], repeat: int) -> list[float]:
    """Seconds from the Run POST being sent to the first step_started event, per run."""
    import httpx

    from designer.runs.models import Run

    team, project = fx["team"], fx["projects"]["trivial"]
    url = f"{server.url}/p/{team.slug}/{project.slug}/-/run/"
    times = []
    with httpx.Client(cookies={"sessionid": fx["session"]}) as client:
        client.get(f"{server.url}/t/{team.slug}/runs/")  # the first request starts the worker; sets csrftoken
        token = client.cookies["csrftoken"]
        for _ in range(repeat + 1):
            sent = time.time()
            response = client.post(url, data={"csrfmiddlewaretoken": token}, headers={"HX-Request": "true"})
            run_id = int(response.headers["HX-Redirect"].rstrip("/").rsplit("/", 1)[1])
            times.append(_first_step_started(run_id) - sent)
            while not Run.objects.get(pk=run_id).finished:
                time.sleep(0.01)
    return times[1:]  # the first one warms up the server


class _Watcher(asyncio.Protocol):
    """A lean websocket client (websockets' Sans-I/O protocol on an asyncio transport).

    Each message is stamped when its bytes are read from the socket, before any parsing: with 100 clients
    in one process, parsing JSON in between (as ``websockets.connect`` + ``json.loads`` per message did)
    made the last client's stamp wait for the other 99, which measured the bench client, not the server.
    """

    def __init__(self, uri: str, headers: dict[str, str]) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(uri), origin=headers.get("Origin"))  # type: ignore[arg-type]
        self.request = self.protocol.connect()
        for name, value in headers.items():
            if name != "Origin":
                self.request.headers[name] = value
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.finished = asyncio.Event()
        self.messages: list[tuple[float, str]] = []  # (time read, text)
        self._fragments: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.protocol.send_request(self.request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode

        received = time.time()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if not isinstance(event, Frame):  # the handshake response
                if not self.opened.done():
                    error = self.protocol.handshake_exc
                    self.opened.set_exception(error) if error else self.opened.set_result(None)
            elif event.opcode in (Opcode.TEXT, Opcode.CONT):
                self._fragments.append(bytes(event.data))
                if event.fin:
                    text = b"".join(self._fragments).decode()
                    self._fragments = []
                    self.messages.append((received, text))
                    if '"run_finished"' in text:
                        self.finished.set()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        self.finished.set()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.protocol.send_close()
            self._flush()
            self.transport.close()


async def _open(uri: str, headers: dict[str, str], port: int, opening: asyncio.Semaphore) -> _Watcher:
    """A connected watcher; a connection reset during the handshake is tried again (what is measured is
    the delivery of events, not a storm of connections)."""
    loop = asyncio.get_running_loop()
    for attempt in range(5):
        watcher = _Watcher(uri, headers)
        try:
            async with opening:
                await loop.create_connection(lambda w=watcher: w, "127.0.0.1", port)
                await watcher.opened
            return watcher
        except (ConnectionResetError, ConnectionRefusedError):
            watcher.close()
            if attempt == 4:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


async def _watch_latencies(
    server: LiveServer, session: str, run_id: int, clients: int
) -> tuple[list[float], int]:
    headers = {"Cookie": f"sessionid={session}", "Origin": server.url}
    uri = f"ws://127.0.0.1:{server.port}/ws/runs/{run_id}/"
    opening = asyncio.Semaphore(25)  # 100 handshakes at once overflow the server's accept queue
    watchers = await asyncio.gather(*(_open(uri, headers, server.port, opening) for _ in range(clients)))

    async def synced(watcher: _Watcher) -> None:  # the server has replayed the (empty) history
        while not any(json.loads(text)["type"] == "synced" for _, text in watcher.messages):
            await asyncio.sleep(0.01)
        watcher.messages.clear()

    await asyncio.wait_for(asyncio.gather(*(synced(w) for w in watchers)), 60)
    connected_at = time.time()
    gc.collect()
    gc.disable()  # a collection in this process would delay every client's stamp: measure the server
    try:
        await asyncio.to_thread(_release, run_id)
        await asyncio.wait_for(asyncio.gather(*(w.finished.wait() for w in watchers)), 60)
    finally:
        gc.enable()
    for watcher in watchers:
        watcher.close()
    latencies: list[float] = []
    gaps = 0
    for watcher in watchers:  # parsed after the run, so parsing never delays a stamp
        last = 0
        for received, text in watcher.messages:
            for event in json.loads(text).get("events", []):
                if event["seq"] != last + 1:
                    gaps += 1
                last = event["seq"]
                if event["ts"] >= connected_at:
                    latencies.append(received - event["ts"])
    return latencies, gaps


def _release(run_id: int) -> None:
    from designer.runs.models import Run

    Run.objects.filter(pk=run_id).update(state="queued")


def bench_event_latency(server: LiveServer, fx: dict[str, Any], clients: int) -> tuple[list[float], int]:
    """Event -> websocket message latencies (seconds) seen by ``clients`` watchers of one run."""
    from designer.runs.launch import start_run
    from designer.runs.models import Run

    run = start_run(fx["projects"]["chain"], fx["user"])
    # Held out of the queue until every client is connected; the server's worker then finds it by polling.
    Run.objects.filter(pk=run.pk).update(state="held")
    return asyncio.run(_watch_latencies(server, fx["session"], run.pk, clients))


def bench_runs_per_second(fx: dict[str, Any], count: int) -> float:
    """Trivial runs completed per second by one worker (concurrency 4) running in this process."""
    from designer.runs.launch import enqueue, snapshot
    from designer.runs.models import Run
    from designer.runs.worker import Worker

    project = fx["projects"]["trivial"]
    spec, versions = snapshot(project, None, None)
    ids = [enqueue(project, spec, versions, [], {}, fx["user"]).pk for _ in range(count)]
    worker = Worker(worker_id="bench", concurrency=4, poll=0.05)
    started = time.perf_counter()
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    while Run.objects.filter(pk__in=ids, state__in=["queued", "running"]).exists():
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    worker.stop()
    thread.join(10)
    return count / elapsed


def _burst_spec() -> dict[str, Any]:
    """50 pipelines x 20 extract steps (plus a merge and a load): a burst of about 3,500 events."""
    steps = [{"id": f"s{i}", "plugin": "sleep_extract", "args": {"seconds": 0}} for i in range(20)]
    merge = {"id": "merge", "plugin": "concat_merge"}
    pipeline = {
        "type": "ETL",
        "phases": {
            "extract": {"steps": steps, "merge": merge},
            "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0}}]},
        },
    }
    return {"concurrency": 10, "pipelines": {f"p{i:02d}": pipeline for i in range(50)}}


def bench_event_storage(fx: dict[str, Any]) -> tuple[float, float, int]:
    """Engine time of an event-heavy run with a MemorySink vs executed by the worker (events stored)."""
    from designer.runs.launch import enqueue
    from designer.runs.models import Run, RunEvent
    from designer.runs.worker import Worker
    from orchestrator.events import MemorySink
    from orchestrator.scheduler import run_project_sync
    from orchestrator.spec import ProjectSpec

    spec = ProjectSpec.model_validate(_burst_spec())
    memory = run_project_sync(spec, sinks=[MemorySink()]).duration
    run = enqueue(fx["projects"]["trivial"], spec.model_dump(mode="json"), {}, [], {}, fx["user"])
    worker = Worker(worker_id="bench-events", concurrency=1, poll=0.05)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    while not Run.objects.get(pk=run.pk).finished:
        time.sleep(0.05)
    worker.stop()
    thread.join(10)
    finished = RunEvent.objects.get(run=run, kind="run_finished")
    return memory, finished.payload["duration"], RunEvent.objects.filter(run=run).count()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool = False) -> list[BenchRow]:
    """Measure the three run figures; rows for ``python -m bench``."""
    db = _setup_django()
    fx = _fixtures()
    server = LiveServer(embedded_env(db))
    try:
        button = bench_button_to_first_step(server, fx, 5 if quick else 20)  # also warms the server up
        alone, gaps = bench_event_latency(server, fx, 1)
        latencies: list[float] = []
        for _ in range(1 if quick else 3):
            more, more_gaps = bench_event_latency(server, fx, 100)
            latencies += more
            gaps += more_gaps
    finally:
        server.stop()
    per_second = bench_runs_per_second(fx, 30 if quick else 150)
    memory, stored, events = bench_event_storage(fx)
    if gaps:
        print(f"warning: websocket clients saw {gaps} seq gaps", file=sys.stderr)
    ms = 1000.0
    alone_ms = [v * ms for v in alone]
    return [
        under("R1 Run button -> first step started", "ms", [b * ms for b in button], 200),
        shown(
            "R2 event -> websocket, 100 clients (p50)",
            "ms",
            [_pct(latencies, 0.5) * ms],
            versus="1 client",
            theirs=[_pct(alone_ms, 0.5)],
        ),
        under(
            "R2 event -> websocket, 100 clients (p99)",
            "ms",
            [_pct(latencies, 0.99) * ms],
            50,
            versus="1 client",
            theirs=[_pct(alone_ms, 0.99)],
        ),
        shown("R3 seconds per trivial run, one worker", "s", [1 / per_second]),
        shown(
            f"R4 run of {events} events, stored by the worker",
            "s",
            [stored],
            versus="MemorySink",
            theirs=[memory],
        ),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
