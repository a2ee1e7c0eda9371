"""The plugin contract, the registry, and the built-in plugins (one module per family)."""

from typing import TYPE_CHECKING, Any

from orchestrator.plugins.base import (
    ExtractPlugin,
    LoadPlugin,
    MergePlugin,
    Plugin,
    PluginError,
    PluginKind,
    PostPlugin,
    PrePlugin,
    SecretProvider,
    StepContext,
    TransformAtLoadPlugin,
    TransformPlugin,
)
from orchestrator.plugins.registry import PluginRegistry, registry

if TYPE_CHECKING:
    from orchestrator.plugins.base import Frame

__all__ = [
    "ExtractPlugin",
    "Frame",
    "LoadPlugin",
    "MergePlugin",
    "Plugin",
    "PluginError",
    "PluginKind",
    "PluginRegistry",
    "PostPlugin",
    "PrePlugin",
    "SecretProvider",
    "StepContext",
    "TransformAtLoadPlugin",
    "TransformPlugin",
    "registry",
]


def __getattr__(name: str) -> Any:
    # ``Frame`` names Polars types: it (and so Polars) is imported only when a plugin module asks for it
    if name == "Frame":
        from orchestrator.plugins import base

        return base.Frame
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
