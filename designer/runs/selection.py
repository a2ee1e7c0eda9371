"""What a run executes: the latest saved version of each pipeline (a draft only when asked for, by name),
templates like any pipeline, and, for a run of chosen pipelines, their upstream (``needs`` closure) when
asked for or when one of those has never succeeded in this project."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery
from pydantic import ValidationError

from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.runs.models import PipelineRun, RunKind
from orchestrator import PipelineSpec, Status


class SelectionRefused(Exception):
    """The pipelines cannot run as asked; the message says why and what to do."""


@dataclass
class Chosen:
    """One pipeline of a run: the spec it runs and the version it comes from (None: its draft)."""

    name: str
    spec: dict[str, Any]
    version: int | None


def _needs(spec: dict[str, Any]) -> list[str]:
    needs: Any = spec.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _latest_versions(pipelines: list[Pipeline]) -> dict[int, PipelineVersion]:
    """pipeline id -> its newest version, in one query (never every version's spec)."""
    versions = PipelineVersion.objects
    newest = versions.filter(pipeline=OuterRef("pipeline")).order_by("-number").values("number")[:1]
    latest = versions.filter(pipeline__in=pipelines, number=Subquery(newest))
    return {v.pipeline_id: v for v in latest}


def _load(project: Project, names: set[str] | None, draft: str | None) -> dict[str, Chosen | str]:
    """name -> what it runs, or why it cannot run (a message)."""
    rows = project.pipelines.all()
    if names is not None:
        rows = rows.filter(name__in=names)
    pipelines = list(rows)
    latest = _latest_versions(pipelines)
    found: dict[str, Chosen | str] = {}
    for pipeline in pipelines:
        version = latest.get(pipeline.pk)
        if pipeline.name == draft:
            found[pipeline.name] = (
                Chosen(pipeline.name, pipeline.spec, None)
                if pipeline.is_valid
                else f"the draft of {pipeline.name} has errors: fix them in the editor first"
            )
        elif version is None:
            found[pipeline.name] = (
                f"{pipeline.name} has no saved version yet: save it in the editor "
                "(its Run draft button runs the draft)"
            )
        else:
            found[pipeline.name] = Chosen(pipeline.name, version.spec, version.number)
        chosen = found[pipeline.name]
        if isinstance(chosen, Chosen) and not _valid(chosen.spec):  # saved before a rule it breaks existed
            where = "its draft" if chosen.version is None else f"its saved version {chosen.version}"
            found[pipeline.name] = f"pipeline {pipeline.name} has errors in {where}: fix them in the editor"
    return found


#: name set (None: all) -> what each found runs, or why it cannot
Loader = Callable[[set[str] | None], dict[str, Chosen | str]]


class ProjectPipelines:
    """A project's pipelines as its runs execute them (no draft), each read once, when first asked for:
    what several runs started together share (``choose(known=...)``). ``wanted``: the names to read now,
    in one go (None: every pipeline)."""

    def __init__(self, project: Project, wanted: set[str] | None) -> None:
        self.project = project
        self.found: dict[str, Chosen | str] = {}
        self.looked: set[str] = set()  # names read (found or not)
        self.everything = False
        self(wanted)

    def __call__(self, names: set[str] | None) -> dict[str, Chosen | str]:
        if names is None:
            if not self.everything:
                self.found.update(_load(self.project, None, None))
                self.everything = True
            return dict(self.found)
        unread = set(names) - self.looked
        if unread and not self.everything:
            self.found.update(_load(self.project, unread, None))
            self.looked |= unread
        return {n: self.found[n] for n in names if n in self.found}


def _loader(project: Project, draft: str | None, known: Loader | None) -> Loader:
    if known is not None:
        return known
    return lambda names: _load(project, names, draft)


def _valid(spec: dict[str, Any]) -> bool:
    try:
        PipelineSpec.model_validate(copy.deepcopy(spec))
    except ValidationError:
        return False
    return True


def never_succeeded(project: Project, names: Iterable[str]) -> set[str]:
    """Of ``names``, the pipelines that no run of ``project`` has completed successfully."""
    names = set(names)
    if not names:
        return set()
    done = PipelineRun.objects.filter(run__project=project, name__in=names, state=Status.SUCCEEDED).exclude(
        run__kind=RunKind.PREVIEW
    )
    return names - set(done.values_list("name", flat=True).distinct())


def upstream_of(project: Project, names: Iterable[str], draft: str | None = None) -> list[str]:
    """The pipelines ``names`` need, directly or not (their saved versions' ``needs``), sorted."""
    load = _loader(project, draft, None)
    return sorted(set(_with_upstream(load, load(set(names)))) - set(names))


def _with_upstream(load: Loader, found: dict[str, Chosen | str]) -> dict[str, Chosen | str]:
    """``found`` and everything it needs, directly or not."""
    found = dict(found)
    while True:
        wanted = {n for c in found.values() if isinstance(c, Chosen) for n in _needs(c.spec)} - set(found)
        if not wanted:
            return found
        more = load(wanted)
        found.update(more)
        if not set(more) >= wanted:  # a need naming a pipeline that no longer exists: not run
            found.update(dict.fromkeys(wanted - set(more), ""))


def choose(
    project: Project,
    names: Iterable[str] | None,
    *,
    draft: str | None = None,
    upstream: bool | None = False,
    known: ProjectPipelines | None = None,
) -> list[Chosen]:
    """The pipelines a run of ``names`` (None: the whole project) executes, each with its spec; ``draft``
    names the pipeline whose draft runs instead of its latest version. ``upstream``: also run what they
    need (None: only when one of those never succeeded here). ``known``: the project's pipelines as read
    for several runs (without a draft), else they are read now. Raises SelectionRefused."""
    load = _loader(project, draft, known)
    wanted = set(names or ())
    if not wanted:
        found = load(None)
        if not found:
            raise SelectionRefused(f"Project '{project.name}' has no pipelines to run yet.")
    else:
        found = load(wanted)
        unknown = wanted - set(found)
        if unknown:
            raise SelectionRefused(
                f"No pipeline named {', '.join(sorted(unknown))} in project '{project.name}'."
            )
        if upstream is not False:
            closure = _with_upstream(load, found)
            extra = {n for n, c in closure.items() if n not in wanted and c != ""}
            if upstream or never_succeeded(project, extra):
                found = {n: c for n, c in closure.items() if c != ""}
    problems = [reason for reason in found.values() if isinstance(reason, str)]
    if problems:
        raise SelectionRefused("Cannot run: " + "; ".join(sorted(problems)) + ".")
    return [c for c in found.values() if isinstance(c, Chosen)]
