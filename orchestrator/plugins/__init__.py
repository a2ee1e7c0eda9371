"""The plugin contract, the registry, and the built-in plugins (one module per family)."""

from orchestrator.plugins.base import (
    ExtractPlugin,
    Frame,
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
