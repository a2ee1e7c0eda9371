"""What a team's run is given, and nothing more: its data root, the secrets its spec names, the
environment variables the site allows, an egress policy and resource limits. The run itself executes in
a child process (``orchestrator.sandbox``) that never sees the app's settings, keys or connections.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from designer.runs.models import Run
from designer.teams.models import Team
from designer.teams.secrets import secret_references, team_secret_resolver
from orchestrator import RUN_CONTEXT, EgressPolicy, Endpoint, Limits, RunPolicy, RunRequest, Sandbox

#: team fields an owner may set, by limit name
LIMIT_FIELDS = {
    "cpu_seconds": "run_cpu_seconds",
    "memory_mib": "run_memory_mib",
    "open_files": "run_open_files",
    "wall_seconds": "run_wall_seconds",
}

_sandboxes: dict[tuple[str, ...], Sandbox] = {}
_sandboxes_lock = threading.Lock()


def team_data_root(team: Team) -> Path:
    """``PIPEDECK_DATA_ROOT/<team slug>/``, created on first use: the only files a team's runs see."""
    root = Path(settings.PIPEDECK_DATA_ROOT).resolve() / team.slug
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_limits(team: Team) -> Limits:
    """The site's defaults, with what the team's owner set, never above the site's maximum."""
    values: dict[str, int] = {}
    for name, field in LIMIT_FIELDS.items():
        wanted = getattr(team, field) or settings.PIPEDECK_RUN_LIMITS[name]
        values[name] = min(int(wanted), int(settings.PIPEDECK_RUN_LIMITS_MAX[name]))
    return Limits(**values, threads=settings.PIPEDECK_RUN_THREADS)


def run_env() -> dict[str, str]:
    """What ``${{ env.X }}`` resolves to in runs: the allowed names only."""
    return {name: os.environ[name] for name in settings.PIPEDECK_RUN_ENV_ALLOW if name in os.environ}


def app_endpoints() -> list[Endpoint]:
    """The app's own database and Redis: refused to runs even when their network is allowed."""
    endpoints = []
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("postgresql"):
        endpoints.append(
            Endpoint(database.get("HOST") or "localhost", int(database.get("PORT") or 5432), database["NAME"])
        )
    if settings.REDIS_URL:
        redis = urlsplit(settings.REDIS_URL)
        endpoints.append(Endpoint(redis.hostname or "localhost", redis.port or 6379))
    return endpoints


def egress_policy() -> EgressPolicy:
    """Where runs of the web app may connect."""
    return EgressPolicy.restricted_from(settings.PIPEDECK_EGRESS_ALLOW, app_endpoints())


def run_policy(data_root: Path | None = None) -> RunPolicy:
    """The site's rules for runs, for validation in the editor and on import (``data_root``: the team's
    folder, when its paths are to be checked against it); SQL is parsed as the steps will parse it."""
    return RunPolicy(
        env_allowed=frozenset(settings.PIPEDECK_RUN_ENV_ALLOW),
        network=egress_policy(),
        data_root=str(data_root) if data_root is not None else None,
        parse_sql=True,
    )


def build_request(run: Run) -> RunRequest:
    """The child's request for ``run`` (database thread: it reads and decrypts the team's secrets)."""
    team = run.team
    resolver = team_secret_resolver(team)
    available = set(resolver.names())
    secrets = {name: resolver(name) for name in sorted(secret_references(run.spec)) if name in available}
    return RunRequest(
        run_id=str(run.pk),
        # ${{ run.date }}, ${{ run.datetime }}, ${{ run.id }}: known once the run has its row
        spec={**run.spec, "variables": {**run.spec.get("variables", {}), RUN_CONTEXT: run.context()}},
        only=list(run.pipelines) or None,
        data_root=str(team_data_root(team)),
        env=run_env(),
        secrets=secrets,
        missing_secret=(
            f"secret '{{name}}' is not set in team '{team.name}': "
            "an owner can set it under Team settings > Secrets"
        ),
        network=egress_policy().to_dict(),
        limits=run_limits(team),
    )


def sandbox() -> Sandbox:
    """This process's fork server for runs (one per set of extra plugin modules)."""
    modules = tuple(settings.PIPEDECK_PLUGIN_MODULES)
    with _sandboxes_lock:
        if modules not in _sandboxes:
            _sandboxes[modules] = Sandbox(modules)
        return _sandboxes[modules]


def close_sandboxes() -> None:
    """Stop the fork servers of this process (runs already started go on)."""
    with _sandboxes_lock:
        for box in _sandboxes.values():
            box.close()
        _sandboxes.clear()


def limit_choices() -> dict[str, Any]:
    """Defaults and maxima, for the team settings form."""
    return {
        name: {"default": settings.PIPEDECK_RUN_LIMITS[name], "max": settings.PIPEDECK_RUN_LIMITS_MAX[name]}
        for name in LIMIT_FIELDS
    }
