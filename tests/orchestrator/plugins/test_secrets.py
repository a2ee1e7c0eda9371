"""env_secret: a secret read from the environment at run time."""

from __future__ import annotations

import pytest

from orchestrator.plugins import PluginError
from orchestrator.plugins.secrets import EnvSecret


def test_it_reads_the_variable(monkeypatch):
    monkeypatch.setenv("PIPEDECK_TEST_DSN", "postgresql://u:p@h/db")
    assert EnvSecret({"name": "PIPEDECK_TEST_DSN"}).resolve() == "postgresql://u:p@h/db"


def test_a_missing_variable_is_named(monkeypatch):
    monkeypatch.delenv("PIPEDECK_NOT_SET", raising=False)
    with pytest.raises(PluginError, match="^environment variable 'PIPEDECK_NOT_SET' is not set; set it"):
        EnvSecret({"name": "PIPEDECK_NOT_SET"}).resolve()
