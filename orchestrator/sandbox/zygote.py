"""The fork server: a process started with a clean environment that imports the engine and its plugins
once, then forks one child per run on request.

Each request is one byte on the control socket carrying three file descriptors: the run's event socket,
a status pipe and a stderr pipe. The server forks a small monitor, which forks the run's child, reports
the child's pid on the status pipe, waits for it and reports its wait status there too. Polars' thread
pool must not start in this process (a fork would copy its locks mid-use): nothing here touches a frame.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

#: file descriptors per fork request: events socket, status pipe, stderr pipe
FDS_PER_REQUEST = 3
#: the libraries plugins import when they first run: imported here once, so that no run pays for them
#: (Polars alone costs a child ~0.3 s of CPU); importing Polars does not start its thread pool
HEAVY_LIBRARIES = ("polars", "httpx", "psycopg", "pymysql")


def preload(modules: Sequence[str]) -> None:
    """Import what every run needs (the engine, the plugins and their libraries) before forking."""
    import orchestrator.flow  # noqa: F401 - kept outputs and resumes (web runs keep their outputs)
    import orchestrator.sandbox.child  # noqa: F401 - imported for the children
    from orchestrator.plugins.registry import registry

    registry.load()
    for name in modules:
        registry.register_module(importlib.import_module(name))
    for library in HEAVY_LIBRARIES:
        with contextlib.suppress(ImportError):  # a site without a driver runs no plugin that needs it
            importlib.import_module(library)
    gc.collect()
    gc.freeze()  # the children share these pages instead of copying them when the collector runs


def serve(control: socket.socket) -> None:
    """Fork a monitor (and through it a run's child) for each request, until the worker hangs up."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1, FDS_PER_REQUEST)
        if not message:
            return
        if len(fds) != FDS_PER_REQUEST:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            control.close()
            _monitor(*fds)
        for fd in fds:
            os.close(fd)


def _monitor(events_fd: int, status_fd: int, stderr_fd: int) -> NoReturn:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        os.close(status_fd)
        _child(events_fd, stderr_fd)
    os.close(events_fd)
    os.close(stderr_fd)
    with os.fdopen(status_fd, "w") as status:
        status.write(json.dumps({"pid": pid}) + "\n")
        status.flush()
        _, wait_status = os.waitpid(pid, 0)
        status.write(json.dumps({"status": wait_status}) + "\n")
    os._exit(0)


def _child(events_fd: int, stderr_fd: int) -> NoReturn:
    os.setsid()  # its own process group: cancel and timeout end the group, threads and children alike
    os.dup2(stderr_fd, 2)
    os.dup2(stderr_fd, 1)
    os.close(stderr_fd)
    code = 70
    try:
        from orchestrator.sandbox.child import serve as serve_run

        code = serve_run(socket.socket(fileno=events_fd))
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)  # no interpreter shutdown: threads of abandoned steps end with the process


def main(argv: Sequence[str]) -> None:
    """``zygote CONTROL_FD MODULES_JSON``."""
    control = socket.socket(fileno=int(argv[0]))
    preload(json.loads(argv[1]) if len(argv) > 1 else [])
    serve(control)


if __name__ == "__main__":
    main(sys.argv[1:])
