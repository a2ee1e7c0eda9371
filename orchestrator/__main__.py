"""``python -m orchestrator run project.yaml``: headless runs, same semantics as the web app."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

from orchestrator.cli import main


def _exit(code: int) -> None:
    """Exit with ``code`` without tearing the interpreter down: freeing Polars, NumPy and the drivers'
    modules one by one takes a tenth of a second that a finished command has no use for. The atexit
    handlers still run and the output is flushed; a thread still running gets the usual exit instead."""
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing more to say
            stream.flush()
    os._exit(code)


def run() -> None:
    """The ``pipedeck-orchestrator`` command (pyproject's console script): ``main`` with the quick exit."""
    _exit(main())


if __name__ == "__main__":
    run()
