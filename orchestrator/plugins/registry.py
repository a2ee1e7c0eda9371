"""The plugin registry: built-ins, plus third-party plugins found through the ``pipedeck.plugins`` group."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from orchestrator.plugins.base import CALLS, Plugin, PluginKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "pipedeck.plugins"

#: modules holding the built-in plugins, one per family
BUILTIN_MODULES = (
    "orchestrator.plugins.generate",
    "orchestrator.plugins.files",
    "orchestrator.plugins.sql",
    "orchestrator.plugins.http",
    "orchestrator.plugins.merges",
    "orchestrator.plugins.frames",
    "orchestrator.plugins.secrets",
)


class UnknownPlugin(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown plugin '{self.name}'"


class PluginRegistry:
    """Name -> plugin class. Validates each class when it registers, so mistakes fail early.

    ``PluginRegistry()`` loads the built-ins and the entry-point plugins on first use;
    ``PluginRegistry.empty()`` holds only what is registered into it (tests, benches, embedding).
    """

    def __init__(self, *, installed: bool = True) -> None:
        self._plugins: dict[str, type[Plugin]] = {}
        self._loaded = not installed
        self._loading = threading.RLock()

    @classmethod
    def empty(cls, *plugins: type[Plugin]) -> PluginRegistry:
        """A registry of just ``plugins``: the installed ones are never loaded into it."""
        registry = cls(installed=False)
        for plugin in plugins:
            registry.register(plugin)
        return registry

    def register(self, cls: type[Plugin]) -> type[Plugin]:
        """Add a plugin class (usable as a decorator). Raises TypeError when it breaks the contract."""
        check_plugin_class(cls)
        existing = self._plugins.get(cls.name)
        if existing is not None and existing is not cls:
            log.warning("plugin %r from %s replaces %s", cls.name, cls.__module__, existing.__module__)
        self._plugins[cls.name] = cls
        return cls

    def unregister(self, name: str) -> None:
        """Remove the plugin ``name`` (no error when it is not there)."""
        self._plugins.pop(name, None)

    def register_module(self, module: ModuleType) -> None:
        """Register every concrete plugin class defined in ``module``."""
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Plugin)
                and obj.__module__ == module.__name__
                and "name" in vars(obj)
            ):
                self.register(obj)

    def load(self) -> PluginRegistry:
        """Import the built-ins and the entry-point plugins once (other threads wait until it is done)."""
        if self._loaded:
            return self
        with self._loading:
            if not self._loaded:
                self._load()
                self._loaded = True
        return self

    def _load(self) -> None:
        for path in BUILTIN_MODULES:
            self.register_module(importlib.import_module(path))
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                target = ep.load()
            except Exception:
                log.exception("could not load plugin entry point %r (%s)", ep.name, ep.value)
                continue
            if inspect.ismodule(target):
                self.register_module(target)
            else:
                self.register(target)

    def get(self, name: str) -> type[Plugin]:
        if not self._loaded:  # the engine asks once per step: skip the call once loaded
            self.load()
        try:
            return self._plugins[name]
        except KeyError:
            raise UnknownPlugin(name, sorted(self._plugins)) from None

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._plugins

    def all(self, kind: PluginKind | None = None) -> list[type[Plugin]]:
        self.load()
        plugins = sorted(self._plugins.values(), key=lambda p: (list(PluginKind).index(p.kind), p.name))
        return [p for p in plugins if kind is None or p.kind == kind]

    def describe(self, name: str) -> dict[str, Any]:
        """Name, kind, description and the JSON schema of ``Args``: what the editor's forms are built from."""
        cls = self.get(name)
        return {
            "name": cls.name,
            "kind": cls.kind.value,
            "description": cls.description,
            "module": cls.__module__,
            "args_schema": cls.Args.model_json_schema(),
        }


def check_plugin_class(cls: Any) -> None:
    """Raise TypeError naming what a plugin class lacks."""
    if not (inspect.isclass(cls) and issubclass(cls, Plugin)):
        raise TypeError(f"{cls!r} is not a subclass of orchestrator.plugins.Plugin")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{cls.__qualname__}.name must be an identifier string, got {name!r}")
    kind = getattr(cls, "kind", None)
    if kind not in CALLS:
        raise TypeError(f"plugin {name!r}: kind must be one of {', '.join(k.value for k in PluginKind)}")
    if not (inspect.isclass(cls.Args) and issubclass(cls.Args, BaseModel)):
        raise TypeError(f"plugin {name!r}: Args must be a pydantic BaseModel subclass")
    base, method = CALLS[kind]
    impl = getattr(cls, method, None)
    if impl is None or impl is getattr(base, method):
        raise TypeError(f"plugin {name!r} ({kind.value}) must define {method}()")
    wants_async = method in {"extract", "load"} or (method == "run")
    if wants_async != inspect.iscoroutinefunction(impl):
        how = "async def" if wants_async else "def (not async)"
        raise TypeError(f"plugin {name!r}: {method}() must be {how} for kind {kind.value}")


#: the process-wide registry used by the engine, the CLI and the web app
registry = PluginRegistry()
