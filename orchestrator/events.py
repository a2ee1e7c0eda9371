"""What a run reports: typed events, and the sink protocol that receives them.

Sinks are always called from the engine's event-loop thread (events from worker threads are handed over
to the loop first), so a sink needs no locking. A sink must be quick; slow work belongs in a queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, ClassVar, Protocol, Self


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    #: a step a resumed run did not execute: its output (or its effect) is the earlier run's, kept
    REUSED = "reused"

    @property
    def finished(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING)


#: one encoder for every event, json.dumps(default=str, separators=(",", ":")) without its per-call set-up:
#: the C encoder json.dumps itself uses, built once (no circular check: an event's fields are flat)
_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
_C_ENCODER = (
    c_make_encoder(None, str, encode_basestring_ascii, None, ":", ",", False, False, True)
    if c_make_encoder is not None
    else None
)


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time)

    @classmethod
    def fast(cls, **fields: Any) -> Self:
        """The event of ``fields`` (every field but ``ts``), built without the dataclass ``__init__``,
        which sets each field of a frozen instance through ``object.__setattr__``: the engine emits two
        per step, and W1 measures them."""
        event = cls.__new__(cls)
        fields["ts"] = time.time()
        event.__dict__.update(fields)
        return event

    def to_dict(self) -> dict[str, Any]:
        # Fields hold plain values (RunStarted copies its list): a shallow copy equals dataclasses.asdict.
        return {"kind": self.kind, **vars(self)}

    def to_json(self) -> str:
        if _C_ENCODER is None:
            return _JSON.encode(self.to_dict())
        return "".join(_C_ENCODER(self.to_dict(), 0))


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    pipelines: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "pipelines": list(self.pipelines)}


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: Status
    duration: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class PipelineEvent(Event):
    pipeline: str


@dataclass(frozen=True, kw_only=True)
class PipelineStarted(PipelineEvent):
    kind: ClassVar[str] = "pipeline_started"


@dataclass(frozen=True, kw_only=True)
class PipelineFinished(PipelineEvent):
    kind: ClassVar[str] = "pipeline_finished"
    status: Status
    duration: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(PipelineEvent):
    kind: ClassVar[str] = "phase_started"
    phase: str


@dataclass(frozen=True, kw_only=True)
class PhaseFinished(PipelineEvent):
    kind: ClassVar[str] = "phase_finished"
    phase: str
    status: Status
    duration: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class StepEvent(PipelineEvent):
    phase: str
    step: str


@dataclass(frozen=True, kw_only=True)
class StepStarted(StepEvent):
    kind: ClassVar[str] = "step_started"
    plugin: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class StepProgress(StepEvent):
    kind: ClassVar[str] = "step_progress"
    rows: int
    total: int | None = None


@dataclass(frozen=True, kw_only=True)
class StepLog(StepEvent):
    kind: ClassVar[str] = "step_log"
    level: str
    message: str


@dataclass(frozen=True, kw_only=True)
class StepFinished(StepEvent):
    kind: ClassVar[str] = "step_finished"
    plugin: str
    status: Status
    duration: float
    rows_in: int | None = None
    rows_out: int | None = None
    error: str | None = None
    attempt: int = 1


class EventSink(Protocol):
    def __call__(self, event: Event) -> None: ...


class MemorySink:
    """Keeps every event in a list: for tests and for replaying a run."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
