"""The vocabulary of a pipeline's shape, in one place: its types, its phases in order, which phases each
type requires or allows, each phase's slots and the kind of plugin each slot takes.

Everything else (the spec, validation, YAML, the engine, the designer's lanes) reads these tables.
"""

from __future__ import annotations

from enum import StrEnum


class PipelineType(StrEnum):
    ETL = "ETL"
    ELT = "ELT"
    ETLT = "ETLT"


class PhaseName(StrEnum):
    EXTRACT = "extract"
    TRANSFORM = "transform"
    LOAD = "load"
    TRANSFORM_AT_LOAD = "transform_at_load"


class PluginKind(StrEnum):
    EXTRACT = "extract"
    MERGE = "merge"
    TRANSFORM = "transform"
    LOAD = "load"
    TRANSFORM_AT_LOAD = "transform_at_load"
    PRE = "pre"
    POST = "post"
    SECRET = "secret"


PHASE_ORDER: tuple[PhaseName, ...] = tuple(PhaseName)

#: phase -> required? (phases absent from a type's map are not allowed for that type)
PHASES_BY_TYPE: dict[PipelineType, dict[PhaseName, bool]] = {
    PipelineType.ETL: {PhaseName.EXTRACT: True, PhaseName.TRANSFORM: False, PhaseName.LOAD: True},
    PipelineType.ELT: {PhaseName.EXTRACT: True, PhaseName.LOAD: True, PhaseName.TRANSFORM_AT_LOAD: True},
    PipelineType.ETLT: {
        PhaseName.EXTRACT: True,
        PhaseName.TRANSFORM: False,
        PhaseName.LOAD: True,
        PhaseName.TRANSFORM_AT_LOAD: True,
    },
}

#: phase -> its slots in the order they run (and are shown) -> the plugin kind the slot takes.
#: ``steps`` is a list run as the phase says; ``merge`` one step; ``pre`` / ``post`` lists around them.
PHASE_SLOTS: dict[str, dict[str, PluginKind]] = {
    PhaseName.EXTRACT: {
        "pre": PluginKind.PRE,
        "steps": PluginKind.EXTRACT,
        "merge": PluginKind.MERGE,
        "post": PluginKind.POST,
    },
    PhaseName.TRANSFORM: {"steps": PluginKind.TRANSFORM},
    PhaseName.LOAD: {"pre": PluginKind.PRE, "steps": PluginKind.LOAD, "post": PluginKind.POST},
    PhaseName.TRANSFORM_AT_LOAD: {"steps": PluginKind.TRANSFORM_AT_LOAD},
}

#: the kinds of plugins that are steps of a pipeline (a secret provider is not)
STEP_KINDS: tuple[PluginKind, ...] = tuple(k for k in PluginKind if k is not PluginKind.SECRET)


def slot_kind(phase: PhaseName | str, slot: str) -> PluginKind:
    """The plugin kind a slot takes (``extract.steps`` -> extract, ``load.pre`` -> pre...)."""
    return PHASE_SLOTS[PhaseName(phase)][slot]


def allowed_phases(pipeline_type: PipelineType | str) -> list[PhaseName]:
    """The phases a pipeline type allows, in order (none for an unknown type)."""
    try:
        rules = PHASES_BY_TYPE[PipelineType(pipeline_type)]
    except ValueError:
        return []
    return [p for p in PHASE_ORDER if p in rules]


def required_phases(pipeline_type: PipelineType | str) -> list[PhaseName]:
    """The phases a pipeline type requires, in order (none for an unknown type)."""
    try:
        rules = PHASES_BY_TYPE[PipelineType(pipeline_type)]
    except ValueError:
        return []
    return [p for p in PHASE_ORDER if rules.get(p)]
