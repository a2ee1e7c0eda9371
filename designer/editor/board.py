"""What the editor shows: the palette, the lanes of a pipeline with their steps, and where each error is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from designer.editor.edits import slot_steps
from orchestrator import PHASE_SLOTS, STEP_KINDS, allowed_phases, registry, required_phases, slot_kind

PHASE_LABELS = {
    "extract": "Extract",
    "transform": "Transform",
    "load": "Load",
    "transform_at_load": "Transform at load",
}
KIND_LABELS = {
    "extract": "Extract",
    "merge": "Merge",
    "transform": "Transform",
    "load": "Load",
    "transform_at_load": "Transform at load",
    "pre": "Before a phase",
    "post": "After a phase",
}
SLOT_LABELS = {"pre": "before", "steps": "steps", "merge": "merge", "post": "after"}
_ERROR_PATH = re.compile(r"^phases\.(\w+)(?:\.(pre|steps|merge|post)(?:\[(\d+)\])?)?(?:\.(.*))?$")


@cache
def palette() -> list[dict[str, Any]]:
    """Every registered step plugin, grouped by kind (the registry is fixed for a process's life)."""
    groups = []
    for kind in STEP_KINDS:
        plugins = [
            {"name": p.name, "kind": kind.value, "description": p.description} for p in registry.all(kind)
        ]
        if plugins:
            groups.append({"kind": kind.value, "label": KIND_LABELS[kind.value], "plugins": plugins})
    return groups


@cache
def _kinds_with_plugins() -> frozenset[str]:
    return frozenset(group["kind"] for group in palette())


@dataclass
class StepView:
    id: str
    plugin: str
    phase: str
    slot: str
    index: int
    summary: str
    known: bool
    kind: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SlotView:
    phase: str
    slot: str
    kind: str
    label: str
    steps: list[StepView]
    visible: bool = True


@dataclass
class LaneView:
    phase: str
    label: str
    required: bool
    slots: list[SlotView]
    errors: list[str] = field(default_factory=list)

    @property
    def step_count(self) -> int:
        """Its steps, not counting the extract merge (which combines them)."""
        return sum(len(s.steps) for s in self.slots if s.slot != "merge")


def as_text(value: Any) -> str:
    """An argument's value as a person reads it: ``a, b`` for a list, ``k: v`` for a mapping, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {as_text(v)}" for k, v in value.items())
    return str(value)


def _summary(args: dict[str, Any]) -> str:
    parts = []
    for key, value in list(args.items())[:2]:
        text = as_text(value)
        parts.append(f"{key}: {text[:40] + '…' if len(text) > 40 else text}")
    return " · ".join(parts)


def locate_error(error: dict[str, Any]) -> tuple[str | None, str | None, int | None, str]:
    """(phase, slot, index, rest of the path) an error points at; phase None for pipeline-wide errors."""
    match = _ERROR_PATH.match(error.get("path") or "")
    if not match:
        return None, None, None, error.get("path") or ""
    phase, slot, index, rest = match.groups()
    return phase, slot, int(index) if index is not None else None, rest or ""


def build_lanes(spec: dict[str, Any], errors: list[dict[str, Any]]) -> tuple[list[LaneView], list[str]]:
    """The lanes of the pipeline's type with their steps, each error attached to its step or lane."""
    pipeline_type = spec.get("type", "ETL")
    phases = spec.get("phases") or {}
    required = set(required_phases(pipeline_type))
    lanes: dict[str, LaneView] = {}
    steps_at: dict[tuple[str, str, int], StepView] = {}
    for phase in allowed_phases(pipeline_type):
        current = phases.get(phase) or {}
        slots = []
        for slot in PHASE_SLOTS[phase]:
            views = []
            for i, step in enumerate(slot_steps(current, slot)):
                view = StepView(
                    id=str(step.get("id") or ""),
                    plugin=str(step.get("plugin") or ""),
                    phase=phase,
                    slot=slot,
                    index=i,
                    summary=_summary(step.get("args") or {}),
                    known=step.get("plugin") in registry,
                    kind=slot_kind(phase, slot).value,
                )
                steps_at[(phase, slot, i)] = view
                views.append(view)
            if slot == "merge":
                visible = len(current.get("steps") or []) > 1 or bool(views)
            else:  # before/after slots only when some plugin can go there
                visible = (
                    slot == "steps" or bool(views) or slot_kind(phase, slot).value in _kinds_with_plugins()
                )
            slots.append(
                SlotView(phase, slot, slot_kind(phase, slot).value, SLOT_LABELS[slot], views, visible)
            )
        lanes[phase] = LaneView(phase, PHASE_LABELS[phase], phase in required, slots)
    general = []
    for error in errors:
        error_phase, error_slot, index, rest = locate_error(error)
        key = (
            error_phase or "",
            error_slot or "",
            0 if error_slot == "merge" else (index if index is not None else -1),
        )
        if key in steps_at:
            steps_at[key].errors.append({**error, "rest": rest})
        elif error_phase in lanes:
            lanes[error_phase].errors.append(error["message"])
        else:
            general.append(f"{error['path']}: {error['message']}" if error.get("path") else error["message"])
    return list(lanes.values()), general


def find_view(lanes: list[LaneView], phase: str, step_id: str) -> StepView | None:
    """The view of step ``step_id`` in ``phase``."""
    for lane in lanes:
        for slot in lane.slots if lane.phase == phase else []:
            for step in slot.steps:
                if step.id == step_id:
                    return step
    return None


def step_errors(
    pipeline_spec: dict[str, Any], errors: list[dict[str, Any]], phase: str, step_id: str
) -> list[dict[str, Any]]:
    """The errors of one step (each with ``rest``: the path inside the step, like ``args.path``)."""
    lanes, _general = build_lanes(pipeline_spec, errors)
    for lane in lanes:
        if lane.phase != phase:
            continue
        for slot in lane.slots:
            for step in slot.steps:
                if step.id == step_id:
                    return step.errors
    return []
