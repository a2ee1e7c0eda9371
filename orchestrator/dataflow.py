"""Where a pipeline's table flows: each step's key (``phase.step_id``), the order its steps run in, which
step's output each step reads, and fingerprints of everything that decides a step's output.

A resumed run reuses a kept output only when the fingerprint of its step is the same as when it was kept:
a step's own fingerprint covers its plugin, its arguments and the values of the variables they name; its
chain fingerprint covers its own and those of every step its table came through.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.phases import PHASE_ORDER, PHASE_SLOTS
from orchestrator.resolve import Reference, iter_references
from orchestrator.spec import PipelineSpec, StepSpec


def step_key(phase: str, step_id: str) -> str:
    """A step's key in a pipeline: ``extract.read_orders``, ``transform.big_orders``..."""
    return f"{phase}.{step_id}"


@dataclass(frozen=True)
class Place:
    """One step where it runs: its key, phase and slot (``pre``, ``steps``, ``merge``, ``post``)."""

    key: str
    phase: str
    slot: str
    step: StepSpec

    @property
    def makes_table(self) -> bool:
        """True for the steps whose output is the table the next step reads."""
        return (self.phase, self.slot) in _TABLE_SLOTS


_TABLE_SLOTS = {("extract", "steps"), ("extract", "merge"), ("transform", "steps")}


def places(pipeline: PipelineSpec) -> list[Place]:
    """Every step of ``pipeline`` in the order it runs (an extract or load phase's steps run together):
    the phases in order, each phase's slots in ``PHASE_SLOTS`` order."""
    found: list[Place] = []
    for name in PHASE_ORDER:
        phase = pipeline.phase(name)
        if phase is None:
            continue
        for slot in PHASE_SLOTS[name]:
            value = getattr(phase, slot)
            steps = value if isinstance(value, list) else [value] if value is not None else []
            found += [Place(step_key(name, s.id), name.value, slot, s) for s in steps]
    return found


def extract_output(pipeline: PipelineSpec) -> str | None:
    """The key of the step whose table leaves the extract phase: the merge, else the one extract step."""
    extract = pipeline.phases.extract
    if extract is None:
        return None
    if extract.merge is not None:
        return step_key("extract", extract.merge.id)
    return step_key("extract", extract.steps[0].id)


def step_inputs(pipeline: PipelineSpec) -> dict[str, list[str]]:
    """Each step's key -> the keys of the steps whose output it reads (none for an extract step, the
    extract steps for the merge, the previous table for a transform step, the last table for load)."""
    inputs: dict[str, list[str]] = {}
    table = extract_output(pipeline)
    for place in places(pipeline):
        if place.phase == "extract":
            if place.slot == "merge":
                extract = pipeline.phases.extract
                assert extract is not None
                inputs[place.key] = [step_key("extract", s.id) for s in extract.steps]
            else:
                inputs[place.key] = [table] if place.slot == "post" and table else []
        elif place.phase == "transform":
            inputs[place.key] = [table] if table else []
            table = place.key
        elif place.phase == "load":
            inputs[place.key] = [table] if table and place.slot != "pre" else []
        else:
            inputs[place.key] = []
    return inputs


def start_inputs(pipeline: PipelineSpec, key: str) -> list[str]:
    """The keys of the kept tables a run that starts at step ``key`` reads: the step's own inputs; for any
    load step, the table the load phase receives (the load phase runs whole)."""
    inputs = step_inputs(pipeline)
    if phase_of(key) == "load":
        return next((inputs[p.key] for p in places(pipeline) if p.phase == "load" and p.slot == "steps"), [])
    return inputs.get(key, [])


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _variables_named(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "${{" in value:
            for ref in iter_references(value):
                if isinstance(ref, Reference) and ref.kind == "variables":
                    yield ref.name
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _variables_named(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _variables_named(item)


def own_print(step: StepSpec, variables: Mapping[str, Any]) -> str:
    """A step's own fingerprint: its plugin, its arguments and the values of the variables they name."""
    named = sorted(set(_variables_named(step.args)))
    return _digest(step.plugin, step.args, {name: variables.get(name) for name in named})


@dataclass(frozen=True)
class Prints:
    """A pipeline's fingerprints: per step key, its own and its chain's."""

    own: dict[str, str]
    chain: dict[str, str]


def fingerprints(pipeline: PipelineSpec, variables: Mapping[str, Any]) -> Prints:
    """The fingerprints of every step of ``pipeline`` with these variable values.

    The chain of an extract step covers the extract pre steps and itself; the merge's covers every extract
    step; a transform step's the table it reads; the load steps share one covering the whole load phase
    (they run together); a transform-at-load step's covers the load and the steps before it. Post steps
    do not change the table, so no chain goes through them.
    """
    order = places(pipeline)
    own = {place.key: own_print(place.step, variables) for place in order}
    chain: dict[str, str] = {}
    pre = _digest("pre", [own[p.key] for p in order if p.phase == "extract" and p.slot == "pre"])
    extract_chains: list[str] = []
    table = ""
    load_places = [p for p in order if p.phase == "load"]
    load_chain = ""
    for place in order:
        if place.phase == "extract":
            if place.slot in ("pre", "steps"):
                chain[place.key] = _digest(pre, own[place.key]) if place.slot == "steps" else pre
                if place.slot == "steps":
                    extract_chains.append(chain[place.key])
                    table = chain[place.key]
            elif place.slot == "merge":
                chain[place.key] = table = _digest(extract_chains, own[place.key])
            else:
                chain[place.key] = _digest(table, own[place.key])
        elif place.phase == "transform":
            chain[place.key] = table = _digest(table, own[place.key])
        elif place.phase == "load":
            if not load_chain:
                load_chain = _digest(table, [own[p.key] for p in load_places])
            chain[place.key] = load_chain
        else:
            previous = load_chain or table
            chain[place.key] = load_chain = _digest(previous, own[place.key])
    return Prints(own, chain)


def phase_of(key: str) -> str:
    """The phase of a step key (``transform.big_orders`` -> ``transform``)."""
    phase, _, _ = key.partition(".")
    return phase if phase in PHASE_SLOTS else ""


def chain_prints(pipeline: PipelineSpec, variables: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Each step's chain fingerprint: equal in two versions of a pipeline when the step and every step its
    table came through are the same (a step's recorded output then still describes it)."""
    return fingerprints(pipeline, variables or {}).chain
