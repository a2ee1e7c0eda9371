"""Plugins that mishandle a secret on purpose (log it, fail with it), for the secret-leak test.

A module of its own so that the web app's runs, which execute in child processes, register them too
(``PIPEDECK_PLUGIN_MODULES``). Each step leaves a proof that it received the real value: a SHA-256 of
what it saw, in the data root (never the value itself).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from pydantic import BaseModel, Field

from orchestrator.plugins.base import (
    SECRET_FIELD,
    ExtractPlugin,
    Frame,
    LoadPlugin,
    PluginError,
    SecretProvider,
    StepContext,
)

CANARY = "canary-S3CRET-9f8e7d6c"
SEEN: dict[str, str] = {}


class DsnArgs(BaseModel):
    dsn: str = Field(json_schema_extra=SECRET_FIELD)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _prove(ctx: StepContext, what: str, value: str) -> None:
    SEEN[what] = value
    (Path(ctx.data_root) / f"seen-{what}.sha256").write_text(digest(value))


def seen(data_root: Path, what: str) -> str:
    """The digest of what step ``what`` received in a run whose data root was ``data_root``."""
    return (data_root / f"seen-{what}.sha256").read_text()


class LeakyExtract(ExtractPlugin):
    name = "test_leaky_extract"
    description = "Logs its DSN (with the secret in it): the engine must redact it."
    Args = DsnArgs

    async def extract(self, ctx: StepContext) -> Frame:
        _prove(ctx, "extract", self.args.dsn)
        ctx.logger.info("connecting to %s", self.args.dsn)
        ctx.logger.warning("the password is %s", ctx.secrets["LEAK"])
        return pl.DataFrame({"x": [1]})


class LeakyLoad(LoadPlugin):
    name = "test_leaky_load"
    description = "Fails with the secret in its error message."
    Args = DsnArgs

    async def load(self, ctx: StepContext, data: Frame) -> None:
        _prove(ctx, "load", self.args.dsn)
        raise PluginError(f"could not log in with password {self.args.dsn}")


class StaticSecretArgs(BaseModel):
    value: str


class StaticSecret(SecretProvider):
    name = "test_static_secret"
    description = "A secret written in the file itself (what a careless export of another tool holds)."
    Args = StaticSecretArgs

    def resolve(self) -> str:
        return self.args.value
