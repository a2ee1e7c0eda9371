"""Builders for test data: ``make_pipeline(**kw)`` and friends. Others may add functions at the end."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth.models import User

from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.teams import activity
from designer.teams.models import Membership, Team

_seq = itertools.count(1)

#: a small valid ETL pipeline using the example sleep plugins (always installed)
SLEEP_SPEC: dict[str, Any] = {
    "type": "ETL",
    "phases": {
        "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": 0.01}}]},
        "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": 0.01}}]},
    },
}


def make_user(username: str | None = None, password: str = "pw", **kw: Any) -> User:
    """A user (password "pw" unless given)."""
    username = username or f"user{next(_seq)}"
    return User.objects.create_user(username=username, password=password, **kw)


def make_team(name: str | None = None, members: dict[User, str] | None = None, **kw: Any) -> Team:
    """A team, with optional ``{user: role}`` members."""
    name = name or f"Team {next(_seq)}"
    team = Team.objects.create(name=name, slug=kw.pop("slug", None) or name.lower().replace(" ", "-"), **kw)
    for user, role in (members or {}).items():
        Membership.objects.create(team=team, user=user, role=role)
    return team


def add_member(team: Team, user: User, role: str = "editor") -> Membership:
    """Give ``user`` a role in ``team``."""
    return Membership.objects.create(team=team, user=user, role=role)


def make_project(team: Team | None = None, name: str | None = None, **kw: Any) -> Project:
    """A project (in a new team unless given)."""
    team = team or make_team()
    name = name or f"Project {next(_seq)}"
    slug = kw.pop("slug", None) or name.lower().replace(" ", "-")
    return Project.objects.create(team=team, name=name, slug=slug, **kw)


def make_pipeline(
    project: Project | None = None,
    name: str | None = None,
    spec: dict[str, Any] | None = None,
    version: bool = True,
    **kw: Any,
) -> Pipeline:
    """A pipeline with a valid sleep spec by default, and its first version unless ``version=False``."""
    import copy

    project = project or make_project()
    name = name or f"pipeline_{next(_seq)}"
    spec = copy.deepcopy(spec if spec is not None else SLEEP_SPEC)
    kw.setdefault("is_valid", True)
    if kw["is_valid"]:  # stored as the designer stores it: the engine's normalised dump
        from orchestrator.spec import PipelineSpec

        spec = PipelineSpec.model_validate(spec).model_dump(mode="json")
    pipeline = Pipeline.objects.create(
        project=project,
        name=name,
        slug=kw.pop("slug", None) or name.replace("_", "-"),
        type=spec.get("type", "ETL"),
        spec=spec,
        **kw,
    )
    activity.pipeline_created(pipeline)  # as the designer's views record it
    if version:
        activity.version_saved(
            PipelineVersion.objects.create(pipeline=pipeline, number=1, spec=spec, message="Created")
        )
    return pipeline


def sealed_preview(body: bytes | str) -> dict[str, str]:
    """The form data of an upload preview's "Apply import" (its sealed file), from the preview's HTML."""
    import re

    text = body.decode() if isinstance(body, bytes) else body
    found = re.search(r'name="sealed" value="([^"]+)"', text)
    assert found, "no upload preview with an Apply import button in the page"
    return {"sealed": found.group(1), "confirm": "1"}
