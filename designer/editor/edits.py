"""The editor's operations on a pipeline spec dict (which may be a draft that does not validate yet).

Pure functions: they change the dict in place and raise ``EditError`` for a request that makes no sense
(an unknown step, a plugin of the wrong kind for a slot). Validity is decided afterwards by the engine.
"""

from __future__ import annotations

from typing import Any

from designer import limits
from orchestrator import PHASE_SLOTS, allowed_phases, registry, required_phases, slot_kind


class EditError(ValueError):
    """An edit that cannot be applied; the message is shown to the user."""


def new_spec(pipeline_type: str = "ETL", description: str = "") -> dict[str, Any]:
    """An empty draft: the required phases of the type, each without steps."""
    spec: dict[str, Any] = {"type": pipeline_type, "needs": [], "phases": {}}
    if description:
        spec["description"] = description
    for phase in required_phases(pipeline_type):
        spec["phases"][phase] = {"steps": []}
    return spec


def phase_dict(spec: dict[str, Any], phase: str, create: bool = True) -> dict[str, Any]:
    """The phase's dict in ``spec`` (created empty when missing and ``create``)."""
    if phase not in PHASE_SLOTS:
        raise EditError(f"unknown phase '{phase}'")
    phases = spec.setdefault("phases", {})
    current: dict[str, Any] | None = phases.get(phase)
    if current is None:
        if not create:
            return {}
        if phase not in allowed_phases(spec.get("type", "ETL")):
            raise EditError(f"a pipeline of type {spec.get('type')} has no {phase} phase")
        current = phases[phase] = {"steps": []}
    return current


def slot_steps(phase: dict[str, Any], slot: str) -> list[dict[str, Any]]:
    """The steps of one slot as a list (the merge slot is a list of zero or one step)."""
    if slot == "merge":
        return [phase["merge"]] if phase.get("merge") else []
    return list(phase.get(slot) or [])


def _set_slot(phase: dict[str, Any], slot: str, steps: list[dict[str, Any]]) -> None:
    if slot == "merge":
        phase["merge"] = steps[0] if steps else None
    else:
        phase[slot] = steps


def all_steps(phase: dict[str, Any], phase_name: str) -> list[tuple[str, int, dict[str, Any]]]:
    """Every step of a phase as (slot, index, step)."""
    return [
        (slot, i, step) for slot in PHASE_SLOTS[phase_name] for i, step in enumerate(slot_steps(phase, slot))
    ]


def _unique_id(phase: dict[str, Any], phase_name: str, base: str) -> str:
    taken = {step.get("id") for _slot, _i, step in all_steps(phase, phase_name)}
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def _check_kind(phase: str, slot: str, plugin: str) -> None:
    if slot not in PHASE_SLOTS.get(phase, ()):
        raise EditError(f"the {phase} phase has no '{slot}' slot")
    if plugin not in registry:
        raise EditError(f"unknown plugin '{plugin}'")
    kind = registry.get(plugin).kind
    wanted = slot_kind(phase, slot)
    if kind != wanted:
        raise EditError(
            f"'{plugin}' is a {kind.value} plugin; the {phase} {slot} slot takes {wanted.value} plugins"
        )


def find_step(spec: dict[str, Any], phase: str, step_id: str) -> tuple[str, int, dict[str, Any]]:
    """(slot, index, step) of the step ``step_id`` in ``phase``; EditError when absent."""
    current = phase_dict(spec, phase, create=False)
    for slot, i, step in all_steps(current, phase) if current else []:
        if step.get("id") == step_id:
            return slot, i, step
    raise EditError(f"no step '{step_id}' in {phase}")


def add_step(spec: dict[str, Any], phase: str, slot: str, plugin: str, index: int | None = None) -> str:
    """Insert a new step of ``plugin`` at ``index`` of the slot; returns its id."""
    _check_kind(phase, slot, plugin)
    current = phase_dict(spec, phase)
    step = {"id": _unique_id(current, phase, plugin), "plugin": plugin, "args": {}}
    steps = slot_steps(current, slot)
    if slot == "merge":
        steps = [step]
    else:
        steps.insert(len(steps) if index is None else max(0, min(index, len(steps))), step)
    _set_slot(current, slot, steps)
    return str(step["id"])


def move_step(
    spec: dict[str, Any], phase: str, step_id: str, to_phase: str, to_slot: str, to_index: int
) -> None:
    """Move a step to position ``to_index`` of ``to_phase``.``to_slot`` (reorder or change lane)."""
    slot, i, step = find_step(spec, phase, step_id)
    _check_kind(to_phase, to_slot, step["plugin"])
    source = phase_dict(spec, phase)
    steps = slot_steps(source, slot)
    steps.pop(i)
    _set_slot(source, slot, steps)
    target = phase_dict(spec, to_phase)
    if to_phase != phase:
        step["id"] = _unique_id(target, to_phase, step.get("id") or step["plugin"])
    steps = slot_steps(target, to_slot)
    if to_slot == "merge":
        steps = [step]
    else:
        steps.insert(max(0, min(to_index, len(steps))), step)
    _set_slot(target, to_slot, steps)


def remove_step(spec: dict[str, Any], phase: str, step_id: str) -> None:
    """Remove a step."""
    slot, i, _step = find_step(spec, phase, step_id)
    current = phase_dict(spec, phase)
    steps = slot_steps(current, slot)
    steps.pop(i)
    _set_slot(current, slot, steps)


def set_step(spec: dict[str, Any], phase: str, step_id: str, args: dict[str, Any], new_id: str = "") -> str:
    """Replace a step's arguments (and rename it when ``new_id`` is given); returns its id."""
    _slot, _i, step = find_step(spec, phase, step_id)
    new_id = new_id.strip()
    if len(new_id) > limits.STEP_ID:
        raise EditError(f"a step id may hold up to {limits.STEP_ID} characters (got {len(new_id)})")
    if new_id and new_id != step_id:
        if not new_id.replace("_", "a").replace("-", "a").isalnum():
            raise EditError("a step id may hold letters, digits, '_' and '-' only")
        taken = {s.get("id") for _sl, _j, s in all_steps(phase_dict(spec, phase), phase)}
        if new_id in taken:
            raise EditError(f"step id '{new_id}' is already used in {phase}")
        step["id"] = new_id
    step["args"] = args
    return str(step["id"])


def set_merge(spec: dict[str, Any], plugin: str | None) -> None:
    """Set (or clear, with None) the extract merge step."""
    extract = phase_dict(spec, "extract")
    if not plugin:
        extract["merge"] = None
        return
    old = extract.get("merge")
    if old and old.get("plugin") == plugin:
        return
    add_step(spec, "extract", "merge", plugin)


def steps_dropped_by_type(spec: dict[str, Any], new_type: str) -> list[str]:
    """``phase.step_id`` of every step a change to ``new_type`` would drop."""
    allowed = set(allowed_phases(new_type))
    dropped = []
    for phase, current in (spec.get("phases") or {}).items():
        if current and phase not in allowed:
            dropped += [f"{phase}.{step.get('id')}" for _s, _i, step in all_steps(current, phase)]
    return dropped


def change_type(spec: dict[str, Any], new_type: str) -> list[str]:
    """Switch the pipeline type: drop phases it does not allow, add required ones; returns dropped steps."""
    if new_type not in {"ETL", "ELT", "ETLT"}:
        raise EditError(f"unknown pipeline type '{new_type}'; expected ETL, ELT or ETLT")
    dropped = steps_dropped_by_type(spec, new_type)
    allowed = allowed_phases(new_type)
    phases = spec.setdefault("phases", {})
    for phase in list(phases):
        if phase not in allowed:
            del phases[phase]
    for phase in required_phases(new_type):
        if not phases.get(phase):
            phases[phase] = {"steps": []}
    spec["type"] = new_type
    return dropped


def tidy(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop empty optional phases (an empty transform lane means no transform phase)."""
    required = set(required_phases(spec.get("type", "ETL")))
    phases = spec.get("phases") or {}
    for phase in list(phases):
        current = phases[phase]
        if current is None or phase not in required and not any(True for _ in all_steps(current, phase)):
            del phases[phase]
    return spec
