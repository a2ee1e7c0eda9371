"""Built-in plugins: secret providers (``${{ secrets.X }}`` resolved at run time)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins.base import PluginError, SecretProvider


class EnvSecretArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(
        min_length=1,
        description="Name of the environment variable holding the secret",
        examples=["WAREHOUSE_DSN"],
    )


class EnvSecret(SecretProvider):
    name = "env_secret"
    description = "Read a secret from an environment variable of the process running the pipeline."
    Args = EnvSecretArgs

    def resolve(self) -> str:
        """The variable's value; a PluginError naming the variable when it is not set."""
        value = os.environ.get(self.args.name)
        if value is None:
            raise PluginError(
                f"environment variable '{self.args.name}' is not set; set it in the environment of "
                "the process running the pipeline, or store the secret in the team's secret store"
            )
        return value
