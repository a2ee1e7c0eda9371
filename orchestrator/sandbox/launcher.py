"""The worker's side: start the fork server, run a request in a child, stream its events, stop it.

A cancelled run is asked to stop (its async steps end at once); what is still alive ``CANCEL_GRACE``
seconds later gets SIGTERM, then SIGKILL one second after: a sync step busy in Polars cannot be
interrupted otherwise. The same happens when the run passes its wall-time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.control import RunControl
from orchestrator.sandbox.limits import Limits
from orchestrator.sandbox.protocol import encode, read_frame
from orchestrator.sandbox.request import RunRequest

log = logging.getLogger(__name__)

#: seconds a cancelled run has to stop by itself before its process group is killed
CANCEL_GRACE = 2.0
#: seconds between SIGTERM and SIGKILL
KILL_GRACE = 1.0
#: how long the first fork may take (the fork server imports the engine and plugins first)
START_TIMEOUT = 60.0
#: the last bytes of a child's stderr that are kept (tracebacks of crashes)
STDERR_TAIL = 16 * 1024
#: the fork server's environment: nothing of the worker's
ZYGOTE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_BOOT = "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); " + (
    "from orchestrator.sandbox.zygote import main; main(sys.argv[2:])"
)
_MEMORY_SIGNS = ("memory allocation of", "MemoryError", "Cannot allocate memory", "out of memory")


@dataclass
class ChildExit:
    """How a run's child ended."""

    pid: int | None
    #: the raw wait status (``os.waitpid``), None when it could not be learnt
    status: int | None
    #: set when the worker ended it: "cancelled" or "timeout"
    stopped: str | None = None
    stderr: str = ""

    @property
    def clean(self) -> bool:
        """True when the child exited by itself with status 0."""
        return self.status is not None and os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0

    def failure(self, limits: Limits) -> str:
        """Why the child did not finish its run, as a user reads it."""
        if self.stopped == "timeout":
            return f"time limit of {limits.wall_seconds} s reached: the run was stopped"
        if self.stopped == "cancelled":
            return "cancelled"
        if any(sign in self.stderr for sign in _MEMORY_SIGNS):
            return f"memory limit of {limits.memory_mib} MiB reached"
        if self.status is None:
            return "the run's process ended without a word (its status is unknown)"
        if os.WIFSIGNALED(self.status):
            number = os.WTERMSIG(self.status)
            if number == signal.SIGXCPU:
                return f"CPU time limit of {limits.cpu_seconds} s reached"
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else number
            if number == signal.SIGKILL:
                return f"the run's process was killed ({name}); the machine may be out of memory"
            return f"the run's process crashed ({name})"
        return f"the run's process ended with exit code {os.WEXITSTATUS(self.status)} before the run finished"


@dataclass
class _Stopper:
    """Ends a child: politely first (a cancel message), then by signals to its process group."""

    writer: asyncio.StreamWriter
    pid: int | None = None
    reason: str | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def cancel(self, pipeline: str | None) -> None:
        with contextlib.suppress(Exception):  # the child may be gone already
            self.writer.write(encode({"cancel": pipeline}))
        if pipeline is None:
            self.stop("cancelled", CANCEL_GRACE)

    def stop(self, reason: str, grace: float) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        loop = asyncio.get_running_loop()
        self.timers += [
            loop.call_later(grace, self.kill, signal.SIGTERM),
            loop.call_later(grace + KILL_GRACE, self.kill, signal.SIGKILL),
        ]

    def kill(self, number: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, number)

    def close(self) -> None:
        for timer in self.timers:
            timer.cancel()


class Sandbox:
    """A fork server for runs, started on first use (or by ``start()``) and again if it died."""

    def __init__(self, plugin_modules: Sequence[str] = (), python: str = sys.executable) -> None:
        self.plugin_modules = tuple(plugin_modules)
        self.python = python
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        """The fork server's pid, once started."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the fork server now (it takes a moment to import the engine), unless it runs."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._control is not None:
            return self._control
        self._shutdown()
        ours, theirs = socket.socketpair()
        paths = [os.path.abspath(p) for p in sys.path if p]
        self._process = subprocess.Popen(
            [
                self.python,
                "-c",
                _BOOT,
                json.dumps(paths),
                str(theirs.fileno()),
                json.dumps(self.plugin_modules),
            ],
            env=ZYGOTE_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
            cwd="/",
        )
        theirs.close()
        self._control = ours
        return ours

    def _fork(self, fds: list[int]) -> None:
        with self._lock:
            for attempt in (1, 2):
                control = self._ensure_started()
                try:
                    socket.send_fds(control, [b"F"], fds)
                    return
                except OSError:
                    if attempt == 2:
                        raise
                    log.warning("the run fork server is gone; starting it again")
                    self._shutdown()

    def close(self) -> None:
        """Stop the fork server (runs already started go on)."""
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None

    async def run(
        self,
        request: RunRequest,
        on_events: Callable[[list[dict[str, Any]]], None],
        control: RunControl,
        on_outputs: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> ChildExit:
        """Run ``request`` in a new child; ``on_events`` gets each batch of its events, ``on_outputs`` each
        batch of its steps' output summaries (``StepOutput.to_dict()``), both on this loop.

        Cancelling ``control`` stops the child (politely, then by force); cancelling the awaiting task
        (the worker shuts down) kills it at once.
        """
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        status_r, status_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            await asyncio.to_thread(self._fork, [theirs.fileno(), status_w, stderr_w])
        except BaseException:
            for fd in (status_r, stderr_r):
                os.close(fd)
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(status_w)
            os.close(stderr_w)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        status = await _pipe_reader(status_r)
        stderr_task = asyncio.create_task(_tail(await _pipe_reader(stderr_r)))
        stopper = _Stopper(writer)
        writer.write(encode(request.to_dict()))
        control.attach(loop, stopper.cancel)
        try:
            stopper.pid = await _read_json(status, "pid", START_TIMEOUT)
            if control.cancelled:
                stopper.cancel(None)
            stopper.timers.append(loop.call_later(request.limits.wall_seconds, stopper.stop, "timeout", 0.0))
            while (message := await read_frame(reader)) is not None:
                if "outputs" in message:
                    if on_outputs is not None:
                        on_outputs(message["outputs"] or [])
                    continue
                on_events(message.get("events") or [])
            wait_status = await _read_json(status, "status", CANCEL_GRACE + KILL_GRACE + 5)
        except BaseException:
            stopper.kill(signal.SIGKILL)
            raise
        finally:
            control.detach()
            stopper.close()
            writer.close()
        return ChildExit(stopper.pid, wait_status, stopper.reason, await stderr_task)


async def _pipe_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader


async def _read_json(reader: asyncio.StreamReader, key: str, timeout: float) -> Any:
    """The ``key`` of the next JSON line on a status pipe; None when it ends or stays silent."""
    started = time.monotonic()
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        log.warning("no %s from a run's monitor after %.0f s", key, time.monotonic() - started)
        return None
    if not line:
        return None
    value = json.loads(line).get(key)
    return int(value) if value is not None else None


async def _tail(reader: asyncio.StreamReader) -> str:
    kept = b""
    while chunk := await reader.read(65536):
        kept = (kept + chunk)[-STDERR_TAIL:]
    return kept.decode("utf-8", "replace")
