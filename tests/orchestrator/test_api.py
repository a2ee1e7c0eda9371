"""The engine's public face: ``orchestrator`` exports its API, and importing it costs nothing heavy."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import orchestrator


def test_every_exported_name_resolves_to_its_definition() -> None:
    for name in orchestrator.__all__:
        value = getattr(orchestrator, name)
        module = importlib.import_module(orchestrator._EXPORTS[name])
        assert value is getattr(module, name), name


def test_type_checkers_see_exactly_the_exported_names() -> None:
    tree = ast.parse(Path(orchestrator.__file__).read_text())
    checked = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported = {
        (node.module, alias.name)
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert {(module, name) for name, module in orchestrator._EXPORTS.items()} == imported


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        orchestrator.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_imports_no_engine_module() -> None:
    code = "import sys, orchestrator; print(sorted(m for m in sys.modules if m.startswith('orchestrator')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['orchestrator']"
