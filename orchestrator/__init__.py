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
        ["PARTIAL", "Definitions", "PipelineSpec", "ProjectSpec", "SecretSpec", "StepSpec", "find_cycle"],
        "orchestrator.spec",
    ),
    **dict.fromkeys(
        ["DEFAULT_MAX_BYTES", "dump_pipeline", "dump_project", "load_project"],
        "orchestrator.yamlio",
    ),
    **dict.fromkeys(["Problem", "SpecError"], "orchestrator.errors"),
    **dict.fromkeys(["pipeline_problems", "validate_project"], "orchestrator.validate"),
    # run parameters
    **dict.fromkeys(
        [
            "RUN_CONTEXT",
            "ParamType",
            "Parameter",
            "ParameterError",
            "check_values",
            "load_parameters",
            "make_parameter",
            "parameters_schema",
            "reference_values",
            "run_context",
        ],
        "orchestrator.parameters",
    ),
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
    # step outputs: summaries, kept Parquet, resume, previews
    **dict.fromkeys(["KeepOutputs", "StepOutput"], "orchestrator.outputs"),
    **dict.fromkeys(["ResumeFrom", "ResumeRefused", "plan_resume"], "orchestrator.resume"),
    **dict.fromkeys(
        ["PreviewRefused", "preview_project", "preview_spec", "shown_step"], "orchestrator.preview"
    ),
    **dict.fromkeys(["chain_prints", "step_inputs", "step_key"], "orchestrator.dataflow"),
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
    from orchestrator.control import (
        RunControl as RunControl,
    )
    from orchestrator.dataflow import (
        chain_prints as chain_prints,
        step_inputs as step_inputs,
        step_key as step_key,
    )
    from orchestrator.egress import (
        EgressPolicy as EgressPolicy,
        EgressRefused as EgressRefused,
        Endpoint as Endpoint,
    )
    from orchestrator.errors import (
        Problem as Problem,
        SpecError as SpecError,
    )
    from orchestrator.events import (
        Event as Event,
        EventSink as EventSink,
        MemorySink as MemorySink,
        PhaseFinished as PhaseFinished,
        PhaseStarted as PhaseStarted,
        PipelineFinished as PipelineFinished,
        PipelineStarted as PipelineStarted,
        RunFinished as RunFinished,
        RunStarted as RunStarted,
        Status as Status,
        StepFinished as StepFinished,
        StepLog as StepLog,
        StepProgress as StepProgress,
        StepStarted as StepStarted,
    )
    from orchestrator.outputs import (
        KeepOutputs as KeepOutputs,
        StepOutput as StepOutput,
    )
    from orchestrator.parameters import (
        RUN_CONTEXT as RUN_CONTEXT,
        Parameter as Parameter,
        ParameterError as ParameterError,
        ParamType as ParamType,
        check_values as check_values,
        load_parameters as load_parameters,
        make_parameter as make_parameter,
        parameters_schema as parameters_schema,
        reference_values as reference_values,
        run_context as run_context,
    )
    from orchestrator.phases import (
        PHASE_ORDER as PHASE_ORDER,
        PHASE_SLOTS as PHASE_SLOTS,
        PHASES_BY_TYPE as PHASES_BY_TYPE,
        STEP_KINDS as STEP_KINDS,
        PhaseName as PhaseName,
        PipelineType as PipelineType,
        PluginKind as PluginKind,
        allowed_phases as allowed_phases,
        required_phases as required_phases,
        slot_kind as slot_kind,
    )
    from orchestrator.plugins.base import (
        SECRET_FIELD as SECRET_FIELD,
        ExtractPlugin as ExtractPlugin,
        Frame as Frame,
        LoadPlugin as LoadPlugin,
        MergePlugin as MergePlugin,
        Plugin as Plugin,
        PluginError as PluginError,
        PostPlugin as PostPlugin,
        PrePlugin as PrePlugin,
        SecretProvider as SecretProvider,
        StepContext as StepContext,
        TransformAtLoadPlugin as TransformAtLoadPlugin,
        TransformPlugin as TransformPlugin,
        secret_fields as secret_fields,
    )
    from orchestrator.plugins.registry import (
        PluginRegistry as PluginRegistry,
        UnknownPlugin as UnknownPlugin,
        registry as registry,
    )
    from orchestrator.policy import (
        RunPolicy as RunPolicy,
    )
    from orchestrator.preview import (
        PreviewRefused as PreviewRefused,
        preview_project as preview_project,
        preview_spec as preview_spec,
        shown_step as shown_step,
    )
    from orchestrator.resolve import (
        Redactor as Redactor,
        Reference as Reference,
        ResolveError as ResolveError,
        SecretResolver as SecretResolver,
        iter_references as iter_references,
        secret_key as secret_key,
    )
    from orchestrator.resume import (
        ResumeFrom as ResumeFrom,
        ResumeRefused as ResumeRefused,
        plan_resume as plan_resume,
    )
    from orchestrator.sandbox import (
        ChildExit as ChildExit,
        Limits as Limits,
        RunRequest as RunRequest,
        Sandbox as Sandbox,
    )
    from orchestrator.scheduler import (
        RunResult as RunResult,
        UnknownPipelines as UnknownPipelines,
        run_project as run_project,
        run_project_sync as run_project_sync,
    )
    from orchestrator.spec import (
        PARTIAL as PARTIAL,
        Definitions as Definitions,
        PipelineSpec as PipelineSpec,
        ProjectSpec as ProjectSpec,
        SecretSpec as SecretSpec,
        StepSpec as StepSpec,
        find_cycle as find_cycle,
    )
    from orchestrator.validate import (
        pipeline_problems as pipeline_problems,
        validate_project as validate_project,
    )
    from orchestrator.yamlio import (
        DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES,
        dump_pipeline as dump_pipeline,
        dump_project as dump_project,
        load_project as load_project,
    )
