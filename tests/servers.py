"""Real server processes for tests: ``daphne designer.asgi:application`` on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daphne(port: int, env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
    """Daphne serving Pipedeck on 127.0.0.1:``port`` with ``env`` (output to DEVNULL unless given)."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    command = [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "designer.asgi:application",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, **popen)
