"""Variables for ``${{ variables.X }}``: team-wide, per project, and the order in which they win.

Precedence, lowest first (a later layer overrides an earlier one, name by name):
1. team variables (Team settings > Variables) - shared defaults for every project of the team;
2. the project file's own ``variables:`` document (``Project.variables``, kept for the YAML round trip);
3. project variables (the project's Variables page) - what the team set for this project in the UI;
4. the run's overrides (``--var`` / the Run form), which win over everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from designer.editor.models import Project
from designer.teams.models import Team, Variable, identifier_validator


def team_variables(team: Team) -> dict[str, Any]:
    """The team-wide variables as ``{name: value}``."""
    return dict(Variable.objects.filter(team=team, project=None).values_list("name", "value"))


def project_variables(project: Project) -> dict[str, Any]:
    """The variables set for ``project`` in the UI (not the file's document), as ``{name: value}``."""
    return dict(Variable.objects.filter(project=project).values_list("name", "value"))


def effective_variables(project: Project, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``${{ variables.X }}`` resolves to in a run: team < file document < project < ``overrides``."""
    merged: dict[str, Any] = {}
    merged.update(team_variables(project.team))
    merged.update(project.variables or {})
    merged.update(project_variables(project))
    merged.update(overrides or {})
    return merged


def variable_sources(project: Project) -> list[tuple[str, Any, str]]:
    """``(name, effective value, where it comes from)`` for the project's Variables page, by name."""
    layers = [
        ("team", team_variables(project.team)),
        ("project file", dict(project.variables or {})),
        ("project", project_variables(project)),
    ]
    result: dict[str, tuple[Any, str]] = {}
    for source, values in layers:
        for name, value in values.items():
            result[name] = (value, source)
    return [(name, value, source) for name, (value, source) in sorted(result.items())]


def parse_value(text: str) -> Any:
    """A form's text as a variable value: JSON when it parses (42, true, [1, 2], "quoted"), else the text."""
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        return json.loads(stripped)
    except ValueError:
        return text


def format_value(value: Any) -> str:
    """A variable value as the text a form shows (the inverse of ``parse_value``)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
        return json.dumps(value)  # a string that looks like JSON keeps its quotes
    return json.dumps(value)


@transaction.atomic
def set_variable(team: Team, project: Project | None, name: str, value: Any, user: Any = None) -> Variable:
    """Create or replace a team variable (``project`` None) or a project variable."""
    identifier_validator(name)
    if project is not None and project.team_id != team.pk:
        raise ValueError("the project belongs to another team")
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    variable, _ = Variable.objects.update_or_create(
        team=team, project=project, name=name, defaults={"value": value, "updated_by": actor}
    )
    return variable


def delete_variable(team: Team, project: Project | None, name: str) -> bool:
    """Delete a team or project variable; False when there was none."""
    deleted, _ = Variable.objects.filter(team=team, project=project, name=name).delete()
    return bool(deleted)
