"""Heavy libraries imported on first use: Polars, httpx and the database drivers load when a plugin runs,
so starting the CLI, validating a project or listing the plugins never pays for them."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name`` and imports it on the first attribute access.

    Use it for a module-level name that only function bodies touch, keeping the real import for type
    checkers: ``if TYPE_CHECKING: import polars as pl`` / ``else: pl = LazyModule("polars")``.
    """

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"
