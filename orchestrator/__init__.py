"""Pipedeck's engine: runs pipeline-flow YAML projects. Pure Python; never imports Django.

This module is the engine's public API: ``from orchestrator import load_project, run_project, ...``.
Everything else (``orchestrator.engine``, ``orchestrator.yamlio``...) is machinery that may move.
Names are imported on first use, so ``import orchestrator`` stays cheap (no Polars until a plugin runs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the shape of a pipeline
    **dict.fromkeys(
        [
            "PHASES_BY_TYPE",
            "PHASE_ORDER",
            "PHASE_SLOTS",
            "STEP_KINDS",
            "PhaseName",
            "PipelineType",
            "PluginKind",
            "allowed_phases",
            "required_phases",
            "slot_kind",
        ],
        "orchestrator.phases",
    ),
    # the spec of a project file, and its YAML
    **dict.fromkeys(
        ["PipelineSpec", "ProjectSpec", "SecretSpec", "StepSpec", "find_cycle"], "orchestrator.spec"
    ),
    **dict.fromkeys(
        ["DEFAULT_MAX_BYTES", "Definitions", "dump_pipeline", "dump_project", "load_project"],
        "orchestrator.yamlio",
    ),
    **dict.fromkeys(["Problem", "SpecError"], "orchestrator.errors"),
    **dict.fromkeys(["pipeline_problems", "validate_project"], "orchestrator.validate"),
    # references
    **dict.fromkeys(
        ["Redactor", "Reference", "ResolveError", "SecretResolver", "iter_references", "secret_key"],
        "orchestrator.resolve",
    ),
    # running
    **dict.fromkeys(
        ["RunResult", "UnknownPipelines", "run_project", "run_project_sync"], "orchestrator.scheduler"
    ),
    "RunControl": "orchestrator.control",
    **dict.fromkeys(
        [
            "Event",
            "EventSink",
            "MemorySink",
            "PhaseFinished",
            "PhaseStarted",
            "PipelineFinished",
            "PipelineStarted",
            "RunFinished",
            "RunStarted",
            "Status",
            "StepFinished",
            "StepLog",
            "StepProgress",
            "StepStarted",
        ],
        "orchestrator.events",
    ),
    # what a run may reach, and runs in child processes
    **dict.fromkeys(["EgressPolicy", "EgressRefused", "Endpoint"], "orchestrator.egress"),
    "RunPolicy": "orchestrator.policy",
    **dict.fromkeys(["ChildExit", "Limits", "RunRequest", "Sandbox"], "orchestrator.sandbox"),
    # the plugin contract and the registry
    **dict.fromkeys(
        [
            "SECRET_FIELD",
            "ExtractPlugin",
            "Frame",
            "LoadPlugin",
            "MergePlugin",
            "Plugin",
            "PluginError",
            "PostPlugin",
            "PrePlugin",
            "SecretProvider",
            "StepContext",
            "TransformAtLoadPlugin",
            "TransformPlugin",
            "secret_fields",
        ],
        "orchestrator.plugins.base",
    ),
    **dict.fromkeys(["PluginRegistry", "UnknownPlugin", "registry"], "orchestrator.plugins.registry"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from orchestrator.control import RunControl
    from orchestrator.egress import EgressPolicy, EgressRefused, Endpoint
    from orchestrator.errors import Problem, SpecError
    from orchestrator.events import (
        Event,
        EventSink,
        MemorySink,
        PhaseFinished,
        PhaseStarted,
        PipelineFinished,
        PipelineStarted,
        RunFinished,
        RunStarted,
        Status,
        StepFinished,
        StepLog,
        StepProgress,
        StepStarted,
    )
    from orchestrator.phases import (
        PHASE_ORDER,
        PHASE_SLOTS,
        PHASES_BY_TYPE,
        STEP_KINDS,
        PhaseName,
        PipelineType,
        PluginKind,
        allowed_phases,
        required_phases,
        slot_kind,
    )
    from orchestrator.plugins.base import (
        SECRET_FIELD,
        ExtractPlugin,
        Frame,
        LoadPlugin,
        MergePlugin,
        Plugin,
        PluginError,
        PostPlugin,
        PrePlugin,
        SecretProvider,
        StepContext,
        TransformAtLoadPlugin,
        TransformPlugin,
        secret_fields,
    )
    from orchestrator.plugins.registry import PluginRegistry, UnknownPlugin, registry
    from orchestrator.policy import RunPolicy
    from orchestrator.resolve import (
        Redactor,
        Reference,
        ResolveError,
        SecretResolver,
        iter_references,
        secret_key,
    )
    from orchestrator.sandbox import ChildExit, Limits, RunRequest, Sandbox
    from orchestrator.scheduler import RunResult, UnknownPipelines, run_project, run_project_sync
    from orchestrator.spec import PipelineSpec, ProjectSpec, SecretSpec, StepSpec, find_cycle
    from orchestrator.validate import pipeline_problems, validate_project
    from orchestrator.yamlio import DEFAULT_MAX_BYTES, Definitions, dump_pipeline, dump_project, load_project
