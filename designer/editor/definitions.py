"""What a pipeline's references may use, and the definitions an exported file carries to stand alone."""

from __future__ import annotations

from typing import Any

from designer.editor.models import Project
from designer.teams.models import Secret
from designer.teams.variables import effective_variables
from orchestrator import Reference, SecretSpec, iter_references


def secret_names(project: Project) -> set[str]:
    """Secrets a pipeline of ``project`` may reference: the file's declarations and the team's store."""
    team_secrets = Secret.objects.filter(team_id=project.team_id).values_list("name", flat=True)
    return set(project.secrets or {}) | set(team_secrets)


def reference_context(project: Project) -> tuple[dict[str, Any], set[str]]:
    """The variables (values) and secret names a pipeline of ``project`` may reference; a declared run
    parameter is one, with its default or an example of its type (designer/triggers/parameters.py)."""
    from designer.triggers.parameters import reference_values

    return {**effective_variables(project), **reference_values(project)}, secret_names(project)


def export_definitions(
    project: Project, specs: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, SecretSpec]]:
    """Variables and secret declarations for an exported file, so that it stands alone.

    The project file's own ``variables:`` / ``secrets:``, plus every team or project variable the
    pipelines reference (its current value) and every referenced team secret (declared as an
    ``env_secret`` of the same name; never its value).
    """
    variables = dict(project.variables or {})
    secrets = {name: SecretSpec.model_validate(s) for name, s in (project.secrets or {}).items()}
    used_variables, used_secrets = references(specs)
    missing = used_variables - set(variables)
    if missing:
        context, _names = reference_context(project)
        variables.update({k: context[k] for k in sorted(missing) if k in context})
    for name in sorted(used_secrets - set(secrets)):
        secrets[name] = SecretSpec(plugin="env_secret", args={"name": name})
    return variables, secrets


def references(specs: list[Any]) -> tuple[set[str], set[str]]:
    """Names of the variables and secrets referenced anywhere in ``specs`` (dicts, lists, text)."""
    found: dict[str, set[str]] = {"variables": set(), "secrets": set()}
    stack: list[Any] = list(specs)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${{" in item:
                for ref in iter_references(item):
                    if isinstance(ref, Reference) and ref.kind in found:
                        found[ref.kind].add(ref.name)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found["variables"], found["secrets"]
