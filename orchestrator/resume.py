"""Resuming a run from a step: which steps a new run reuses from an earlier run's kept outputs
(``orchestrator.outputs``), and why it cannot when it cannot.

Resuming pipeline P from step S reuses every step before S: the table S reads comes from the kept output
of the step before it, and those steps are reported ``reused`` instead of running. It is refused, with a
reason, when that output is not there (never kept, or gone: expired) or when P changed before S since the
outputs were kept (a step's fingerprint differs: its plugin, its arguments or the variables they name).
Resuming from an extract step reruns the extract phase, reusing the other extract steps' kept outputs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.dataflow import Place, Prints, extract_output, fingerprints, places, start_inputs
from orchestrator.outputs import pipeline_folder, read_manifest
from orchestrator.parameters import RUN_CONTEXT
from orchestrator.spec import PipelineSpec, ProjectSpec

SUCCEEDED = "succeeded"


class ResumeRefused(ValueError):
    """A run cannot resume as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ResumeFrom:
    """Where a run resumes from: an earlier run's kept outputs (``KeepOutputs.directory``) and, per
    pipeline, the key of the step to start at (``transform.big_orders``). Without ``steps``, each pipeline
    starts at the first step that did not succeed there; pipelines that succeeded there are left out."""

    directory: Path
    steps: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ResumePoint:
    """One pipeline's resume: the step it starts at, the steps it reuses, and where their outputs are."""

    pipeline: str
    start: str
    #: the keys of the steps not run (in run order)
    reused: tuple[str, ...]
    #: the earlier run's folder of this pipeline, and its manifest
    source: Path
    manifest: dict[str, Any]
    #: the fingerprints of the pipeline as it runs now
    prints: Prints

    def kept_file(self, key: str) -> Path | None:
        """The earlier run's file of step ``key``, when it kept one that still exists."""
        entry = self.manifest["steps"].get(key) or {}
        name = entry.get("file")
        if not name:
            return None
        path = self.source / str(name)
        return path if path.is_file() else None

    def rows(self, key: str) -> int | None:
        rows = (self.manifest["steps"].get(key) or {}).get("rows")
        return int(rows) if isinstance(rows, int) else None


def first_unfinished(manifest: Mapping[str, Any]) -> str | None:
    """The first step (in run order) that did not succeed in the run that kept ``manifest``; None when
    the pipeline succeeded."""
    if manifest.get("status") == SUCCEEDED:
        return None
    steps = manifest.get("steps") or {}
    for key in manifest.get("order") or []:
        if (steps.get(key) or {}).get("status") != SUCCEEDED:
            return str(key)
    return None


def _label(key: str) -> str:
    phase, _, step = key.partition(".")
    return f"'{step}' ({phase.replace('_', ' ')})"


def _changed_before(
    name: str, start: str, order: list[Place], prints: Prints, manifest: Mapping[str, Any]
) -> str:
    """Why the kept outputs no longer fit: the first step before ``start`` that differs."""
    old_steps = manifest.get("steps") or {}
    old_order = [str(k) for k in manifest.get("order") or []]
    index = [p.key for p in order].index(start)
    # post steps do not change the table: they matter only to what runs after the load
    tal = order[index].phase == "transform_at_load"
    before = [p.key for p in order[:index] if tal or p.slot != "post"]
    for key in before:
        if key not in old_order:
            return f"step {_label(key)} was added"
        if (old_steps.get(key) or {}).get("own") != prints.own[key]:
            return f"step {_label(key)} changed (its plugin, arguments or the variables they use)"
    gone = [k for k in old_order[: old_order.index(start)] if k not in before] if start in old_order else []
    if gone:
        return f"step {_label(gone[0])} was removed"
    return "the steps before it are not the same"


def _needed(pipeline: PipelineSpec, order: list[Place], start: Place) -> tuple[list[str], list[str]]:
    """(keys whose kept table the resume reads, keys that must have succeeded) for starting at ``start``."""
    before = order[: order.index(start)]
    if start.phase == "extract" and start.slot in ("pre", "steps"):
        return [], []
    if start.phase == "transform_at_load":
        return [], [p.key for p in before]
    return start_inputs(pipeline, start.key), [p.key for p in before if p.makes_table]


def _reused(pipeline: PipelineSpec, order: list[Place], start: Place) -> list[str]:
    """The steps a resume from ``start`` does not run."""
    index = order.index(start)
    if start.phase == "extract" and start.slot in ("pre", "steps"):
        return []
    if start.phase == "extract" and start.slot == "post":
        return [p.key for p in order[:index] if p.slot != "post"]
    if start.phase == "load":  # the load phase runs whole
        return [p.key for p in order if p.phase in ("extract", "transform")]
    return [p.key for p in order[:index]]


def plan_pipeline(
    name: str, pipeline: PipelineSpec, start_key: str, source: Path, variables: Mapping[str, Any]
) -> ResumePoint:
    """The resume of pipeline ``name`` from step ``start_key`` with the outputs kept in ``source`` (the
    pipeline's folder); ResumeRefused when it cannot."""
    order = places(pipeline)
    by_key = {p.key: p for p in order}
    if start_key not in by_key:
        raise ResumeRefused(f"pipeline '{name}' has no step {_label(start_key)} to resume from")
    manifest = read_manifest(source)
    if manifest is None:
        raise ResumeRefused(
            f"pipeline '{name}': no kept outputs in {source} (they expired, or the run did not keep them)"
        )
    start = by_key[start_key]
    prints = fingerprints(pipeline, variables)
    old = manifest.get("steps") or {}
    tables, succeeded = _needed(pipeline, order, start)
    for key in [*succeeded, *tables]:
        entry = old.get(key) or {}
        if entry.get("chain") != prints.chain[key]:
            reason = _changed_before(name, start_key, order, prints, manifest)
            raise ResumeRefused(
                f"pipeline '{name}' changed before step {_label(start_key)} since its outputs were kept: "
                f"{reason}; run it from the start"
            )
        if entry.get("status") != SUCCEEDED:
            raise ResumeRefused(
                f"pipeline '{name}': step {_label(key)} did not succeed in the run that kept the outputs; "
                f"resume from it instead"
            )
    point = ResumePoint(name, start_key, tuple(_reused(pipeline, order, start)), source, manifest, prints)
    for key in tables:
        if point.kept_file(key) is None:
            raise ResumeRefused(
                f"pipeline '{name}': the kept output of step {_label(key)} is gone (expired or removed); "
                "run it from the start"
            )
    return point


def plan_resume(
    project: ProjectSpec,
    resume: ResumeFrom,
    *,
    only: Collection[str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> dict[str, ResumePoint]:
    """The resume point of each pipeline of the run (``only`` those) that resumes; ResumeRefused when one
    cannot. ``variables``: the run's overrides of the project's variables."""
    values = {k: v for k, v in {**project.variables, **(variables or {})}.items() if k != RUN_CONTEXT}
    points: dict[str, ResumePoint] = {}
    names = [n for n in project.pipelines if only is None or n in only]
    for name in names:
        source = pipeline_folder(resume.directory, name)
        if resume.steps is not None:
            if name not in resume.steps:
                continue
            start = resume.steps[name]
        else:
            manifest = read_manifest(source)
            if manifest is None:
                raise ResumeRefused(f"pipeline '{name}': no kept outputs in {source}")
            found = first_unfinished(manifest)
            if found is None:
                continue
            start = found
        points[name] = plan_pipeline(name, project.pipelines[name], start, source, values)
    return points


def succeeded_pipelines(directory: Path, names: Collection[str]) -> list[str]:
    """Of ``names``, the pipelines whose kept manifest in ``directory`` says they succeeded."""
    done = []
    for name in names:
        manifest = read_manifest(pipeline_folder(directory, name))
        if manifest is not None and manifest.get("status") == SUCCEEDED:
            done.append(name)
    return done


def reusable_extract_steps(point: ResumePoint, pipeline: PipelineSpec) -> list[str]:
    """Resuming from an extract step: the other extract steps whose kept outputs still fit (reused)."""
    extract = pipeline.phases.extract
    if extract is None or point.start == extract_output(pipeline):
        return []
    keys = [p.key for p in places(pipeline) if p.phase == "extract" and p.slot == "steps"]
    old = point.manifest.get("steps") or {}
    return [
        key
        for key in keys
        if key != point.start
        and (old.get(key) or {}).get("chain") == point.prints.chain[key]
        and (old.get(key) or {}).get("status") == SUCCEEDED
        and point.kept_file(key) is not None
    ]
