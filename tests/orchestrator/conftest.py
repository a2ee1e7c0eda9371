"""Shared fixtures for the engine's tests: a small registry of test plugins, one per kind."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins.base import (
    SECRET_FIELD,
    ExtractPlugin,
    LoadPlugin,
    MergePlugin,
    PostPlugin,
    PrePlugin,
    SecretProvider,
    TransformAtLoadPlugin,
    TransformPlugin,
)
from orchestrator.plugins.registry import PluginRegistry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadRows(ExtractPlugin):
    name = "read_rows"

    class Args(_Strict):
        path: str = Field(json_schema_extra=SECRET_FIELD)  # a test plugin: its path may carry a secret
        limit: int = 10

    async def extract(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class JoinRows(MergePlugin):
    name = "join_rows"

    class Args(_Strict):
        on: str

    def merge(self, ctx, frames):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class KeepRows(TransformPlugin):
    name = "keep_rows"

    class Args(_Strict):
        expr: str = "true"

    def transform(self, ctx, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class WriteRows(LoadPlugin):
    name = "write_rows"

    class Args(_Strict):
        table: str
        dsn: str = Field("sqlite://", json_schema_extra=SECRET_FIELD)

    async def load(self, ctx, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class RunSql(TransformAtLoadPlugin):
    name = "run_sql"

    class Args(_Strict):
        sql: str

    def execute(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class Before(PrePlugin):
    name = "before"

    async def run(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class After(PostPlugin):
    name = "after"

    async def run(self, ctx, data):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class EnvSecret(SecretProvider):
    name = "env_secret"

    class Args(_Strict):
        name: str

    def resolve(self) -> str:
        raise NotImplementedError


TEST_PLUGINS = (ReadRows, JoinRows, KeepRows, WriteRows, RunSql, Before, After, EnvSecret)


@pytest.fixture
def test_registry() -> PluginRegistry:
    """A registry holding only the test plugins above (no built-ins, no entry points)."""
    reg = PluginRegistry.empty()
    for cls in TEST_PLUGINS:
        reg.register(cls)
    return reg
