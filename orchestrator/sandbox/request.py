"""What the worker sends a run's child: everything the run may use, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.limits import Limits


@dataclass
class RunRequest:
    """One run for a child process. ``secrets`` holds only the values the spec references."""

    run_id: str
    #: the ProjectSpec as JSON
    spec: dict[str, Any]
    data_root: str
    only: list[str] | None = None
    #: what ``${{ env.X }}`` may read
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    #: the message for a secret the team does not have (``{name}`` is replaced)
    missing_secret: str = "secret '{name}' is not set"
    #: ``EgressPolicy.to_dict()``
    network: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    #: what to keep of each step's output (None: nothing): ``directory`` (relative to the data root; None:
    #: summaries only), ``sample_rows``, ``sample_bytes``, ``value_chars``, ``compression``
    outputs: dict[str, Any] | None = None
    #: where the run resumes: ``directory`` (an earlier run's kept outputs, relative to the data root) and
    #: ``steps`` ({pipeline: step key})
    resume: dict[str, Any] | None = None
    #: a preview: ``pipeline``, ``step`` (its key) and ``row_limit``; the spec is cut after the step
    preview: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "limits": self.limits.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        return cls(**{**data, "limits": Limits.from_dict(data.get("limits") or {})})
