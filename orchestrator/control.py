"""Cancelling a running project from any thread (the web worker, a signal handler, a test)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class RunControl:
    """Thread-safe handle on one project run: ``cancel()`` the whole run or ``cancel_pipeline(name)``.

    Calls made before the run starts are remembered and applied when it starts. Cancelling reaches a
    waiting async step on the loop's next turn; a sync step in a worker thread cannot be interrupted,
    so its phase is abandoned at once and the thread stops before its next step.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_cancel: Callable[[str | None], None] | None = None
        self._run_cancelled = False
        self._cancelled_pipelines: set[str] = set()

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._run_cancelled

    def pipeline_cancelled(self, name: str) -> bool:
        """True once the run or this pipeline was cancelled."""
        return self._run_cancelled or name in self._cancelled_pipelines

    def cancel(self) -> None:
        """Cancel the whole run: running pipelines stop, pending ones never start."""
        with self._lock:
            self._run_cancelled = True
        self._notify(None)

    def cancel_pipeline(self, name: str) -> None:
        """Cancel one pipeline (running or not started yet); pipelines that need it are skipped."""
        with self._lock:
            self._cancelled_pipelines.add(name)
        self._notify(name)

    def attach(self, loop: asyncio.AbstractEventLoop, on_cancel: Callable[[str | None], None]) -> None:
        """Called by the scheduler: ``on_cancel(name or None)`` will run on ``loop``."""
        with self._lock:
            self._loop, self._on_cancel = loop, on_cancel

    def detach(self) -> None:
        """Called by the scheduler when the run is over."""
        with self._lock:
            self._loop = self._on_cancel = None

    def _notify(self, name: str | None) -> None:
        with self._lock:
            loop, callback = self._loop, self._on_cancel
        if loop is None or callback is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the run is over anyway
            loop.call_soon_threadsafe(callback, name)
