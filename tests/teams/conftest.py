"""Fixtures for team tests: a team with one user per role, a member of another team, logged-in clients."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.test import Client

from designer.editor.models import Project
from designer.teams.models import Team
from tests.factory import add_member, make_pipeline, make_project, make_team, make_user

ROLES = ("owner", "editor", "runner", "viewer")


@dataclass
class Crew:
    """Team A with one user per role, and ``outsider`` who only belongs to team B."""

    team: Team
    other_team: Team
    project: Project
    other_project: Project
    users: dict[str, User]
    outsider: User

    def client(self, who: str) -> Client:
        """A client logged in as the user of role ``who`` (or "outsider"; "anonymous" is not logged in)."""
        client = Client()
        if who == "outsider":
            client.force_login(self.outsider)
        elif who != "anonymous":
            client.force_login(self.users[who])
        return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    """Django's default hasher takes ~0.5 s per user on a busy machine; tests need no real hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def build_crew() -> Crew:
    """Team "Acme" (slug acme) with owner/editor/runner/viewer; team "Rival" owned by the outsider."""
    team = make_team("Acme")
    users = {role: make_user(role, email=f"{role}@acme.test") for role in ROLES}
    for role, user in users.items():
        add_member(team, user, role)
    outsider = make_user("outsider", email="outsider@rival.test")
    other = make_team("Rival")
    add_member(other, outsider, "owner")
    project = make_project(team, "Sales")
    other_project = make_project(other, "Secret plans")
    make_pipeline(project, "orders")
    make_pipeline(other_project, "rival_orders")
    return Crew(team, other, project, other_project, users, outsider)


@pytest.fixture
def crew(db) -> Crew:  # type: ignore[no-untyped-def]
    """See ``build_crew``."""
    return build_crew()


@pytest.fixture
def fernet_keys(settings):  # type: ignore[no-untyped-def]
    """Two fresh Fernet keys configured as PIPEDECK_SECRET_KEYS (primary first)."""
    keys = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    settings.PIPEDECK_SECRET_KEYS = keys
    return keys
