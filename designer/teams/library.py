"""The team library: search pipelines and projects, share pipelines as templates, copy them around."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.text import slugify

from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.teams.models import Membership, Role, Team

MAX_NAME = 100


@dataclass(frozen=True)
class LibraryQuery:
    """What the library page filters on (every field optional, combined with AND)."""

    text: str = ""
    tag: str = ""
    plugin: str = ""
    author: str = ""
    templates_only: bool = False

    @classmethod
    def from_params(cls, params: Any) -> LibraryQuery:
        """Build from request.GET (``q``, ``tag``, ``plugin``, ``author``, ``templates``)."""
        return cls(
            text=(params.get("q") or "").strip(),
            tag=(params.get("tag") or "").strip(),
            plugin=(params.get("plugin") or "").strip(),
            author=(params.get("author") or "").strip(),
            templates_only=params.get("templates") in {"1", "on", "true"},
        )

    @property
    def empty(self) -> bool:
        return not (self.text or self.tag or self.plugin or self.author or self.templates_only)


def plugins_used(spec: dict[str, Any]) -> set[str]:
    """Names of every plugin a pipeline spec (JSON) calls, in any phase, including pre/post and merge."""
    found: set[str] = set()
    for phase in (spec.get("phases") or {}).values():
        if not isinstance(phase, dict):
            continue
        for key in ("pre", "steps", "post"):
            for step in phase.get(key) or []:
                if isinstance(step, dict) and step.get("plugin"):
                    found.add(str(step["plugin"]))
        merge = phase.get("merge")
        if isinstance(merge, dict) and merge.get("plugin"):
            found.add(str(merge["plugin"]))
    return found


def team_pipelines(team: Team) -> QuerySet[Pipeline]:
    """Every pipeline of the team, with its project and creator loaded."""
    return (
        Pipeline.objects.filter(project__team=team)
        .select_related("project", "created_by")
        .order_by("project__name", "name")
    )


def _author_q(author: str) -> Q:
    return (
        Q(created_by__username__icontains=author)
        | Q(created_by__email__icontains=author)
        | Q(created_by__first_name__icontains=author)
        | Q(created_by__last_name__icontains=author)
        | Q(versions__author__username__icontains=author)
        | Q(versions__author__email__icontains=author)
    )


def search_pipelines(team: Team, query: LibraryQuery) -> list[Pipeline]:
    """The team's pipelines matching ``query``: name/description/project text, tag, plugin used, author."""
    qs = team_pipelines(team)
    if query.text:
        qs = qs.filter(
            Q(name__icontains=query.text)
            | Q(description__icontains=query.text)
            | Q(project__name__icontains=query.text)
        )
    if query.templates_only:
        qs = qs.filter(is_template=True)
    if query.author:
        ids = qs.filter(_author_q(query.author)).values("pk")
        qs = qs.filter(pk__in=ids)
    # Tags and plugins live inside JSON: filtered here, portable across SQLite and PostgreSQL.
    result = list(qs)
    if query.tag:
        wanted = query.tag.lower()
        result = [p for p in result if any(str(t).lower() == wanted for t in p.tags or [])]
    if query.plugin:
        result = [p for p in result if query.plugin in plugins_used(p.spec or {})]
    return result


def search_projects(
    team: Team, query: LibraryQuery, pipelines: Iterable[Pipeline] | None = None
) -> list[Project]:
    """The team's projects whose name/description matches, or that hold a pipeline matching ``query``."""
    qs = Project.objects.filter(team=team).order_by("name")
    if query.empty:
        return list(qs)
    pipelines = search_pipelines(team, query) if pipelines is None else pipelines
    ids = {p.project_id for p in pipelines}
    only_text = not (query.tag or query.plugin or query.author or query.templates_only)
    if only_text:
        text_q = Q(name__icontains=query.text) | Q(description__icontains=query.text)
        return list(qs.filter(text_q | Q(pk__in=ids)))
    return list(qs.filter(pk__in=ids))


def facets(team: Team) -> dict[str, list[str]]:
    """Choices for the library's filters: every tag, plugin and author found in the team."""
    tags: set[str] = set()
    plugins: set[str] = set()
    authors: set[str] = set()
    for pipeline in team_pipelines(team):
        tags.update(str(t) for t in pipeline.tags or [])
        plugins.update(plugins_used(pipeline.spec or {}))
        if pipeline.created_by is not None:
            authors.add(pipeline.created_by.get_username())
    authors.update(
        PipelineVersion.objects.filter(pipeline__project__team=team, author__isnull=False)
        .values_list("author__username", flat=True)
        .distinct()
    )
    return {"tags": sorted(tags), "plugins": sorted(plugins), "authors": sorted(authors)}


def set_template(pipeline: Pipeline, is_template: bool) -> Pipeline:
    """Mark or unmark ``pipeline`` as a template of its team's library."""
    pipeline.is_template = is_template
    pipeline.save(update_fields=["is_template", "updated_at"])
    return pipeline


def unique_pipeline_name(project: Project, base: str) -> str:
    """``base``, or ``base_2``, ``base_3``... : the first name not taken in ``project``."""
    taken = set(Pipeline.objects.filter(project=project).values_list("name", flat=True))
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _spec_for(project: Project, spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``spec`` whose ``needs`` only name pipelines of ``project``; returns the dropped names."""
    spec = copy.deepcopy(spec or {})
    needs = spec.get("needs") or []
    needs = [needs] if isinstance(needs, str) else list(needs)
    existing = set(Pipeline.objects.filter(project=project).values_list("name", flat=True))
    kept = [n for n in needs if n in existing]
    dropped = [n for n in needs if n not in existing]
    if "needs" in spec:
        spec["needs"] = kept
    return spec, dropped


@transaction.atomic
def clone_pipeline(source: Pipeline, project: Project, user: Any, message: str) -> Pipeline:
    """Copy ``source`` into ``project`` under a free name, with version 1 carrying ``message``."""
    name = unique_pipeline_name(project, source.name)
    spec, dropped = _spec_for(project, source.spec)
    if dropped:
        message += f" (dropped needs not in this project: {', '.join(dropped)})"
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    pipeline = Pipeline(
        project=project,
        name=name,
        slug=slugify(name)[:100] or "pipeline",
        description=source.description,
        tags=list(source.tags or []),
        type=source.type,
        spec=spec,
        is_valid=source.is_valid,
        errors=list(source.errors or []),
        is_template=False,
        created_by=actor,
    )
    pipeline.save()
    PipelineVersion.objects.create(
        pipeline=pipeline, number=1, spec=spec, author=actor, message=message[:500]
    )
    return pipeline


def use_template(template: Pipeline, project: Project, user: Any) -> Pipeline:
    """Create a pipeline in ``project`` from ``template`` (version 1: "Created from template X")."""
    if not template.is_template:
        raise ValueError(f"'{template.name}' is not a template")
    if template.project.team_id != project.team_id:
        raise ValueError("a template can only be used in a project of its own team")
    return clone_pipeline(template, project, user, f"Created from template {template.name}")


def copy_to_team(pipeline: Pipeline, project: Project, user: Any) -> Pipeline:
    """Copy ``pipeline`` into ``project`` of another team the user edits in (checked by the caller too)."""
    if not Membership.objects.filter(
        team_id=project.team_id, user=user, role__in=[Role.EDITOR, Role.OWNER]
    ).exists():
        raise PermissionError("you can only copy into a team where you are an editor or owner")
    source = pipeline.project
    message = f"Copied from {source.team.name} / {source.name} / {pipeline.name}"
    return clone_pipeline(pipeline, project, user, message)


def editable_projects(user: Any, exclude_team: Team | None = None) -> list[Project]:
    """Projects in the teams where ``user`` is editor or owner (the targets of "Copy to team")."""
    qs = Project.objects.filter(
        team__memberships__user=user, team__memberships__role__in=[Role.EDITOR, Role.OWNER]
    ).select_related("team")
    if exclude_team is not None:
        qs = qs.exclude(team=exclude_team)
    return list(qs.order_by("team__name", "name"))
