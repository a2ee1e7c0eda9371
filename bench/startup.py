"""Start-up: ``pipedeck-orchestrator validate examples/orders_project.yaml`` as a whole process, beside
pipeline-flow 1.0.8 parsing the same file in a whole process of its own.

Both sides run as their users install them: each in a virtual environment of its own holding the
package and its runtime dependencies (``.bench-venvs/pipedeck``: ``pip install .`` of this checkout,
refreshed on every bench run; ``.bench-venvs/pipeline-flow``), compiled by pip at install. The
development venv (editable install, test and lint tools, the example plugin: about 90 distributions
for ``importlib.metadata`` to scan for entry points) is shown on a line of its own, without a goal.

pipeline-flow has no validate command: its side runs the calls its entry point makes before running
(``YamlParser``, ``load_plugins``, ``parse_pipelines``) with stand-in plugins of the same names, so both
read the YAML, resolve the variables and build every step. Rounds take turns; each run is checked (exit
status 0, three pipelines). Goal: at or below pipeline-flow.

Module-level imports are stdlib only: the pipeline-flow side runs this file in its own environment
(``python bench/startup.py --pipeline-flow-parse FILE``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "examples/orders_project.yaml"
INSTALLED = ROOT / ".bench-venvs" / "pipedeck"
#: the plugins of the demo project, by pipeline-flow's kinds
PLUGINS = {
    "IExtractPlugin": ("csv_extract", "sql_extract"),
    "IMergeExtractPlugin": ("join_merge",),
    "ITransformPlugin": ("filter_rows", "aggregate", "sort_rows", "select_columns", "deduplicate"),
    "ILoadPlugin": ("csv_load", "sql_load"),
    "ITransformLoadPlugin": ("sql_execute",),
}


def installed_pipedeck() -> Path:
    """The console script of Pipedeck installed as a user installs it (``pip install .``, runtime
    dependencies only) in ``.bench-venvs/pipedeck``: made on first use, this checkout's code reinstalled
    on every call."""
    from bench import pipeline_flow_env

    python = INSTALLED / "bin" / "python"
    if not python.exists():
        print(f"creating {INSTALLED.relative_to(ROOT)} (first run only)...", file=sys.stderr)
        subprocess.run([pipeline_flow_env._base_python(), "-m", "venv", str(INSTALLED)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT)], check=True)
    else:
        pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)]
        subprocess.run(pip, check=True, capture_output=True)
    return INSTALLED / "bin" / "pipedeck-orchestrator"


def _timed(cmd: list[str], expect: str, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or expect not in done.stdout:
        from bench import WrongResult

        raise WrongResult(f"{' '.join(cmd)}: exit {done.returncode}, {done.stdout!r} {done.stderr[-500:]!r}")
    return elapsed


def run(quick: bool = False) -> list[Any]:
    """Rows for ``python -m bench``."""
    from bench import against, interleaved, pipeline_flow_env, shown

    project = str(ROOT / PROJECT)
    # run from elsewhere than the checkout: nothing imported from it
    elsewhere = Path(tempfile.mkdtemp(prefix="pipedeck-bench-startup-"))
    ours = [str(installed_pipedeck()), "validate", project]
    dev = [sys.executable, "-m", "orchestrator", "validate", PROJECT]
    sides = {
        "ours": lambda: _timed(ours, "valid (3 pipeline(s)", elsewhere),
        "dev": lambda: _timed(dev, "valid (3 pipeline(s)"),
    }
    note = ""
    try:
        theirs = [str(pipeline_flow_env.ensure_venv()), __file__, "--pipeline-flow-parse", project]
        _timed(theirs, "3 pipelines", elsewhere)
        sides["theirs"] = lambda: _timed(theirs, "3 pipelines", elsewhere)
    except (pipeline_flow_env.BaselineUnavailable, OSError) as exc:
        note = f"pipeline-flow unavailable: {exc}"
    for side in sides.values():
        side()  # a first run may compile bytecode (the development venv's); no side counts it
    figures = interleaved(5 if quick else 15, sides)
    return [
        against(
            f"validate {PROJECT}, whole process",
            "s",
            figures["ours"],
            "pipeline-flow parse",
            figures.get("theirs"),
            at_most=1.0,
            note=note or "both installed with pip in a venv of their own (runtime dependencies only)",
        ),
        shown(
            f"validate {PROJECT}, whole process, development venv",
            "s",
            figures["dev"],
            note="python -m orchestrator in .venv: editable install, dev tools, the example plugin",
        ),
    ]


def _pipeline_flow_parse(path: str) -> None:
    """Inside pipeline-flow's environment: parse ``path`` as its entry point does, with stand-in plugins."""
    import pipeline_flow.plugins as api
    from pipeline_flow.core.parsers import YamlParser, parse_pipelines
    from pipeline_flow.core.plugin_loader import load_plugins

    for base_name, names in PLUGINS.items():
        base = getattr(api, base_name)
        for name in names:

            def init(self: Any, plugin_id: str, _base: Any = base, **kwargs: Any) -> None:
                _base.__init__(self, plugin_id)

            type(name, (base,), {"__init__": init, "__call__": lambda self, *a, **k: None}, plugin_name=name)
    parser = YamlParser(Path(path).read_text())
    load_plugins(parser.plugins)
    pipelines = parse_pipelines(parser.pipelines)
    parser.initialize_yaml_config()
    print(f"{len(pipelines)} pipelines")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--pipeline-flow-parse"]:
        _pipeline_flow_parse(sys.argv[2])
        sys.exit(0)
    from bench.__main__ import main

    sys.exit(main(["startup", *sys.argv[1:]]))
