"""Event delivery for one run, and per-step log capture.

``EventBus`` calls the sinks on the loop thread only: events raised in a worker thread are queued and
handed over with one ``call_soon_threadsafe`` per batch, in the order they were raised. ``step_logger``
gives each step its own logger (a child of ``pipedeck.step``) whose records become ``StepLog`` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

from orchestrator.events import Event, EventSink, StepLog

STEP_LOGGER_NAME = "pipedeck.step"
#: lowest level a step's logger captures (its records also propagate to ``pipedeck.step``)
STEP_LOG_LEVEL = logging.INFO

log = logging.getLogger(__name__)
_step_root = logging.getLogger(STEP_LOGGER_NAME)
# A library never prints on its own: without this, Python's last-resort handler would echo step warnings.
_step_root.addHandler(logging.NullHandler())


class EventBus:
    """Delivers events to the sinks, always on the loop thread, in the order they were raised.

    Events raised in a worker thread wait at most ``HANDOVER_DELAY`` seconds: waking the loop for each
    one would hand the GIL back and forth per event, which costs more than the steps themselves.
    Order still holds: an event raised on the loop first delivers everything queued before it.
    """

    HANDOVER_DELAY = 0.01

    def __init__(
        self,
        sinks: Iterable[EventSink],
        loop: asyncio.AbstractEventLoop,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.sinks = list(sinks)
        self.loop = loop
        self.redact = redact
        self._loop_thread = threading.get_ident()
        self._pending: deque[Event] = deque()
        self._lock = threading.Lock()
        self._flush_scheduled = False

    def emit(self, event: Event) -> None:
        """Deliver ``event`` now (loop thread) or shortly, on the loop (any other thread)."""
        if not self.sinks:
            return
        if threading.get_ident() == self._loop_thread:
            if self._pending:
                self.flush()
            self._deliver(event)
            return
        with self._lock:
            self._pending.append(event)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: an abandoned thread finished late
            self.loop.call_soon_threadsafe(self.loop.call_later, self.HANDOVER_DELAY, self.flush)

    def flush(self) -> None:
        """Deliver every queued event (loop thread only)."""
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._flush_scheduled = False
        for event in batch:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:
                # A broken sink must not break the run it reports on.
                log.exception("event sink %r failed on %s", sink, event.kind)


class _StepLogger(logging.Logger):
    """A logger that turns each record it handles into a ``StepLog`` event, then propagates it."""

    def __init__(self, name: str, on_record: Callable[[logging.LogRecord], None]) -> None:
        super().__init__(name, STEP_LOG_LEVEL)
        self.parent = _step_root
        self._on_record = on_record

    def callHandlers(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's own name
        self._on_record(record)
        super().callHandlers(record)


def step_logger(bus: EventBus, pipeline: str, phase: str, step: str) -> logging.Logger:
    """A logger for one step (not kept in logging's global registry, so runs do not leak loggers)."""

    def on_record(record: logging.LogRecord) -> None:
        # Redact the record itself too: it propagates to the process's handlers (server logs) afterwards.
        record.msg, record.args = bus.redact(record.getMessage()), None
        message = record.msg
        if record.exc_info:
            record.exc_text = bus.redact(logging.Formatter().formatException(record.exc_info))
            message += "\n" + record.exc_text
        bus.emit(
            StepLog(
                pipeline=pipeline,
                phase=phase,
                step=step,
                level=record.levelname,
                message=bus.redact(message),
                ts=record.created,
            )
        )

    return _StepLogger(f"{STEP_LOGGER_NAME}.{pipeline}.{phase}.{step}", on_record)
