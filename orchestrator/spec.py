"""Pydantic models of a project file in the pipeline-flow format, with all of its structural rules.

The spec holds references (``${{ variables.X }}``, ``${{ env.X }}``, ``${{ secrets.X }}``) unresolved:
they are resolved at run time only (see ``orchestrator.resolve``), so a spec can always be dumped back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from orchestrator.phases import PHASE_ORDER, PHASES_BY_TYPE, PhaseName, PipelineType

__all__ = [
    "PHASES_BY_TYPE",
    "PHASE_ORDER",
    "Definitions",
    "ExtractPhase",
    "LoadPhase",
    "PhaseName",
    "Phases",
    "PipelineSpec",
    "PipelineType",
    "ProjectSpec",
    "SecretSpec",
    "StepSpec",
    "TransformAtLoadPhase",
    "TransformPhase",
    "check_needs",
    "find_cycle",
]

DEFAULT_CONCURRENCY = 2
#: ``model_validate(data, context={PARTIAL: True})``: pipelines may lack required phases (a preview runs a
#: pipeline cut after the step it shows: ``orchestrator.preview``)
PARTIAL = "partial"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class StepSpec(_Model):
    """One step: a plugin call with its arguments, plus the engine's per-step options."""

    id: str = Field(default="", description="Unique within its phase; generated from the plugin when empty")
    plugin: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0, description="Seconds before the step is failed")
    retries: int = Field(default=0, ge=0, le=100)
    retry_backoff: float = Field(default=1.0, ge=0, description="Seconds before the first retry, doubling")

    @field_validator("args", mode="before")
    @classmethod
    def _none_args_are_empty(cls, value: Any) -> Any:
        return {} if value is None else value


def _assign_ids(steps: list[StepSpec], taken: set[str]) -> None:
    """Give every step without an id a stable one (``plugin``, ``plugin_2``...), unique in ``taken``."""
    for step in steps:
        if step.id:
            continue
        candidate, n = step.plugin, 1
        while candidate in taken:
            n += 1
            candidate = f"{step.plugin}_{n}"
        step.id = candidate
        taken.add(candidate)


def _check_unique(steps: list[StepSpec]) -> None:
    seen: set[str] = set()
    for step in steps:
        if step.id in seen:
            raise ValueError(f"step id '{step.id}' is used twice in this phase; step ids must be unique")
        seen.add(step.id)


class _Phase(_Model):
    steps: list[StepSpec] = Field(default_factory=list)

    def all_steps(self) -> list[StepSpec]:
        return list(self.steps)

    @model_validator(mode="after")
    def _ids(self) -> Self:
        steps = self.all_steps()
        _assign_ids(steps, {s.id for s in steps if s.id})
        _check_unique(steps)
        return self


class ExtractPhase(_Phase):
    pre: list[StepSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(min_length=1)
    merge: StepSpec | None = None
    post: list[StepSpec] = Field(default_factory=list)

    def all_steps(self) -> list[StepSpec]:
        return [*self.pre, *self.steps, *([self.merge] if self.merge else []), *self.post]

    @model_validator(mode="after")
    def _merge_iff_many(self) -> Self:
        if len(self.steps) > 1 and self.merge is None:
            raise ValueError(
                f"extract has {len(self.steps)} steps, so it needs a 'merge' step to combine them "
                "(for example join_merge)"
            )
        if len(self.steps) <= 1 and self.merge is not None:
            raise ValueError("'merge' is only allowed when extract has more than one step")
        return self


class TransformPhase(_Phase):
    pass


class LoadPhase(_Phase):
    pre: list[StepSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(min_length=1)
    post: list[StepSpec] = Field(default_factory=list)

    def all_steps(self) -> list[StepSpec]:
        return [*self.pre, *self.steps, *self.post]


class TransformAtLoadPhase(_Phase):
    steps: list[StepSpec] = Field(min_length=1)


class Phases(_Model):
    extract: ExtractPhase | None = None
    transform: TransformPhase | None = None
    load: LoadPhase | None = None
    transform_at_load: TransformAtLoadPhase | None = None

    def present(self) -> list[PhaseName]:
        return [p for p in PHASE_ORDER if getattr(self, p.value) is not None]


class PipelineSpec(_Model):
    type: PipelineType
    description: str | None = None
    needs: list[str] = Field(default_factory=list)
    phases: Phases

    @field_validator("needs", mode="before")
    @classmethod
    def _needs_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _phases_match_type(self, info: ValidationInfo) -> Self:
        rules = PHASES_BY_TYPE[self.type]
        present = set(self.phases.present())
        partial = bool((info.context or {}).get(PARTIAL))
        missing = [p.value for p in PHASE_ORDER if rules.get(p) and p not in present and not partial]
        extra = [p.value for p in PHASE_ORDER if p in present and p not in rules]
        problems = []
        if missing:
            problems.append(f"is missing the required phase(s) {', '.join(missing)}")
        if extra:
            problems.append(f"does not allow the phase(s) {', '.join(extra)}")
        if problems:
            raise ValueError(f"a pipeline of type {self.type.value} " + " and ".join(problems))
        return self

    def phase(self, name: PhaseName | str) -> _Phase | None:
        return getattr(self.phases, PhaseName(name).value)  # type: ignore[no-any-return]


class SecretSpec(_Model):
    """Where a secret comes from: a secret-provider plugin and its arguments (values never stored)."""

    plugin: str = "env_secret"
    id: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Definitions:
    """Variables (with their values) and secret names a file may use without defining them: those of the
    project or team it is loaded into; ``pipelines``: the other pipelines of that project (name -> the
    names it needs), which the file's ``needs`` may name."""

    variables: Mapping[str, Any] = field(default_factory=dict)
    secrets: Collection[str] = ()
    pipelines: Mapping[str, Collection[str]] = field(default_factory=dict)


#: the key of ``ProjectSpec.model_validate(data, context={...})`` holding ``Definitions.pipelines``
OTHER_PIPELINES = "other_pipelines"


class ProjectSpec(_Model):
    """A whole project file: its variables and secret declarations, then its pipelines."""

    variables: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretSpec] = Field(default_factory=dict)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=1000)
    pipelines: dict[str, PipelineSpec] = Field(min_length=1)
    #: pipeline-flow's `plugins:` section (custom/community plugin files), kept as is for round trips
    plugins: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _needs_are_known_and_acyclic(self, info: ValidationInfo) -> Self:
        others = (info.context or {}).get(OTHER_PIPELINES) or {}
        found = check_needs({n: p.needs for n, p in self.pipelines.items()}, others)
        if found:
            raise ValueError(found[1])
        return self


def check_needs(
    needs: dict[str, list[str]], others: Mapping[str, Collection[str]] | None = None
) -> tuple[str, str] | None:
    """The first pipeline whose ``needs`` is wrong and why (unknown pipeline or cycle), else None.

    ``others``: pipelines outside ``needs`` that may be named (the rest of the project a file is loaded
    into, name -> its needs); a pipeline of ``needs`` replaces the one of the same name there."""
    graph = {**{n: list(d) for n, d in (others or {}).items()}, **needs}
    for name, deps in needs.items():
        unknown = [n for n in deps if n not in graph]
        if unknown:
            return name, (
                f"pipeline '{name}' needs {', '.join(repr(u) for u in unknown)}, "
                "which is not a pipeline of this project"
            )
    cycle = find_cycle(graph)
    if cycle:
        return cycle[0], f"pipelines depend on each other in a cycle: {' -> '.join(cycle)}"
    return None


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]``, or None when ``graph`` is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None
