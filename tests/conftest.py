"""Shared fixtures: users with roles in a team, and logged-in clients."""

from __future__ import annotations

import os
import tempfile

import pytest
from django.test import Client

from tests.factory import add_member, make_project, make_team, make_user

# Runs write into their team's folder of the data root: one throwaway root per test session (the live
# servers that tests start inherit it through the environment).
os.environ.setdefault("PIPEDECK_DATA_ROOT", tempfile.mkdtemp(prefix="pipedeck-test-data-"))


@pytest.fixture
def alice(db):  # type: ignore[no-untyped-def]
    """The owner of ``team``."""
    return make_user("alice")


@pytest.fixture
def bob(db):  # type: ignore[no-untyped-def]
    """A user in no team."""
    return make_user("bob")


@pytest.fixture
def team(alice):  # type: ignore[no-untyped-def]
    """A team owned by alice."""
    team = make_team("Acme")
    add_member(team, alice, "owner")
    return team


@pytest.fixture
def project(team):  # type: ignore[no-untyped-def]
    """A project of ``team``."""
    return make_project(team, "Sales")


@pytest.fixture
def alice_client(alice) -> Client:  # type: ignore[no-untyped-def]
    """A client logged in as alice."""
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:  # type: ignore[no-untyped-def]
    """A client logged in as bob (a non-member)."""
    client = Client()
    client.force_login(bob)
    return client
