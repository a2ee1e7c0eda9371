"""Previews: a pipeline run up to one step on a limited input, to see that step's output while designing.

``preview_spec`` cuts a project's spec after the step: only that pipeline, only the steps its table comes
through. Extract pre and post steps, load and transform-at-load steps are never part of a preview (they
write; a preview writes nothing). A preview of a load step shows the table it would receive. The cut spec
validates with ``context={PARTIAL: True}`` (required phases may be missing); the steps after the one
previewed may hold errors, since they are cut away first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orchestrator.spec import PARTIAL, ProjectSpec

#: a preview's spec validates with this context
PREVIEW_CONTEXT = {PARTIAL: True}


class PreviewRefused(ValueError):
    """The step cannot be previewed; the message says why."""


def _ids(steps: Any) -> list[str]:
    return [str(s.get("id", "")) for s in steps if isinstance(s, Mapping)] if isinstance(steps, list) else []


def _cut_extract(extract: Mapping[str, Any], *, upto: str | None) -> dict[str, Any]:
    """The extract phase without pre/post steps; with ``upto``, only that extract step."""
    steps = list(extract.get("steps") or [])
    if upto is not None:
        return {"steps": [s for s in steps if isinstance(s, Mapping) and s.get("id") == upto]}
    cut: dict[str, Any] = {"steps": steps}
    if extract.get("merge"):
        cut["merge"] = extract["merge"]
    return cut


def preview_spec(data: Mapping[str, Any], pipeline: str, step: str) -> dict[str, Any]:
    """The project spec (as JSON) a preview of step ``step`` (``phase.step_id``) of ``pipeline`` runs.
    Raises PreviewRefused for a step that has no table to show."""
    pipelines = data.get("pipelines") or {}
    if pipeline not in pipelines:
        raise PreviewRefused(f"no pipeline named '{pipeline}'")
    source = copy.deepcopy(dict(pipelines[pipeline]))
    phases = source.get("phases") or {}
    phase, _, step_id = step.partition(".")
    body = phases.get(phase)
    if not isinstance(body, Mapping):
        raise PreviewRefused(f"pipeline '{pipeline}' has no {phase.replace('_', ' ')} phase")
    extract = phases.get("extract")
    if not isinstance(extract, Mapping):
        raise PreviewRefused("the pipeline has no extract step yet: add one to preview")
    merge = extract.get("merge")
    cut: dict[str, Any] = {}
    if phase == "extract":
        if step_id in _ids(extract.get("steps")):
            cut["extract"] = _cut_extract(extract, upto=step_id)
        elif isinstance(merge, Mapping) and merge.get("id") == step_id:
            cut["extract"] = _cut_extract(extract, upto=None)
        elif step_id in _ids(extract.get("pre")) + _ids(extract.get("post")):
            raise PreviewRefused("a pre or post step produces no table: preview an extract step instead")
        else:
            raise PreviewRefused(f"no extract step '{step_id}'")
    elif phase == "transform":
        ids = _ids(body.get("steps"))
        if step_id not in ids:
            raise PreviewRefused(f"no transform step '{step_id}'")
        cut["extract"] = _cut_extract(extract, upto=None)
        cut["transform"] = {"steps": list(body["steps"])[: ids.index(step_id) + 1]}
    elif phase == "load":
        if step_id not in _ids(body.get("steps")):
            raise PreviewRefused("a pre or post step produces no table: preview a load step instead")
        cut["extract"] = _cut_extract(extract, upto=None)
        transform = phases.get("transform")
        if isinstance(transform, Mapping) and transform.get("steps"):
            cut["transform"] = {"steps": list(transform["steps"])}
    else:
        raise PreviewRefused(
            "a transform-at-load step runs SQL inside the destination: a preview never runs it"
        )
    spec = {"type": source.get("type"), "phases": cut}
    return {
        "variables": dict(data.get("variables") or {}),
        "secrets": dict(data.get("secrets") or {}),
        "concurrency": 1,
        "pipelines": {pipeline: spec},
    }


def preview_project(data: Mapping[str, Any], pipeline: str, step: str) -> ProjectSpec:
    """``preview_spec``, validated (pydantic's ValidationError when a step it keeps is not valid)."""
    return ProjectSpec.model_validate(preview_spec(data, pipeline, step), context=PREVIEW_CONTEXT)


def shown_step(data: Mapping[str, Any], pipeline: str, step: str) -> str:
    """The key of the step whose output a preview of ``step`` shows (a load step shows its input)."""
    phase, _, step_id = step.partition(".")
    if phase != "load":
        return step
    phases = (data.get("pipelines") or {}).get(pipeline, {}).get("phases") or {}
    transform = _ids((phases.get("transform") or {}).get("steps"))
    if transform:
        return f"transform.{transform[-1]}"
    extract = phases.get("extract") or {}
    merge = extract.get("merge")
    if isinstance(merge, Mapping) and merge.get("id"):
        return f"extract.{merge['id']}"
    steps = _ids(extract.get("steps"))
    return f"extract.{steps[0]}" if steps else step
