"""Start-up: the CLI, the spec and the registry never import Polars, httpx or a database driver; a plugin
imports what it needs when it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("polars", "numpy", "pyarrow", "httpx", "httpcore", "psycopg", "pymysql", "pandas")

# Runs what ``python -m orchestrator`` runs, then reports which heavy libraries got imported.
_PROBE = f"""
import json, sys
import orchestrator.__main__
code = orchestrator.__main__.main(sys.argv[1:])
heavy = {HEAVY!r}
print(json.dumps({{"code": code, "imported": sorted(m for m in heavy if m in sys.modules)}}))
"""


def _cli(*args: str, data_root: Path | None = None) -> dict[str, object]:
    env = {**os.environ, **({"PIPEDECK_DATA_ROOT": str(data_root)} if data_root else {})}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_validate_imports_no_heavy_library() -> None:
    assert _cli("validate", "examples/orders_project.yaml") == {"code": 0, "imported": []}


def test_listing_the_plugins_imports_no_heavy_library() -> None:
    assert _cli("plugins", "--json") == {"code": 0, "imported": []}


def test_running_a_pipeline_imports_what_its_plugins_use(tmp_path: Path) -> None:
    project = tmp_path / "p.yaml"
    project.write_text(
        "pipelines:\n  p:\n    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: g, plugin: generate_rows,\n"
        "                         args: {rows: 3, columns: {id: row_number}}}]}\n"
        "      load: {steps: [{id: w, plugin: csv_load, args: {path: out.csv}}]}\n"
    )
    result = _cli("run", str(project), data_root=tmp_path)
    assert result["code"] == 0
    assert "polars" in result["imported"]  # type: ignore[operator]
    assert not {"httpx", "psycopg", "pymysql"} & set(result["imported"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "module",
    ["orchestrator.cli", "orchestrator.spec", "orchestrator.yamlio", "orchestrator.plugins.registry"],
)
def test_importing_the_engine_modules_imports_no_heavy_library(module: str) -> None:
    code = f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plugin_authors_still_import_frame_from_the_plugins_package() -> None:
    import polars as pl

    from orchestrator.plugins import Frame

    assert Frame == pl.DataFrame | pl.LazyFrame
    assert isinstance(pl.DataFrame(), Frame)


def test_a_lazy_module_imports_on_first_use() -> None:
    from orchestrator.plugins.lazy import LazyModule

    lazy = LazyModule("json")
    assert "not imported yet" in repr(lazy)
    assert lazy.dumps([1]) == "[1]"
    assert "(imported)" in repr(lazy)
