"""The bundled example project: in step with the web demo, runnable headless, and read by pipeline-flow."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from designer.demo import DEMO_PIPELINES, DEMO_VARIABLES, build_source_db
from orchestrator.plugins.registry import registry
from orchestrator.spec import ProjectSpec
from orchestrator.yamlio import load_project

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "orders_project.yaml"

#: Registers a stub of every plugin name (by kind) in pipeline-flow, then parses the file with its own
#: parser and models, as `pipeline_flow.entrypoint` does, and prints what it understood.
PIPELINE_FLOW_PARSE = """\
import json, sys
from pipeline_flow.core.parsers.yaml_parser import YamlParser
from pipeline_flow.core.parsers.pipeline_parser import parse_pipelines
from pipeline_flow import plugins as pf

BASES = {"extract": pf.IExtractPlugin, "merge": pf.IMergeExtractPlugin, "transform": pf.ITransformPlugin,
         "load": pf.ILoadPlugin, "transform_at_load": pf.ITransformLoadPlugin, "pre": pf.IPreProcessPlugin,
         "post": pf.IPostProcessPlugin}
for name, kind in json.loads(sys.argv[2]).items():
    def init(self, plugin_id, **args):
        self.id, self.args = plugin_id, args
    type(name, (BASES[kind],), {"__init__": init, "__call__": lambda self, *a: None}, plugin_name=name)

parser = YamlParser(open(sys.argv[1], encoding="utf-8").read())
out = {}
for p in parse_pipelines(parser.pipelines):
    out[p.name] = {"type": str(p.type), "needs": p.needs,
                   "steps": {str(ph): [s.id for s in phase.steps] for ph, phase in p.phases.items()},
                   "args": {str(ph): [s.args for s in phase.steps] for ph, phase in p.phases.items()}}
print(json.dumps({"concurrency": parser.initialize_yaml_config().concurrency, "pipelines": out}))
"""


def test_the_example_is_the_web_demo_project() -> None:
    demo = ProjectSpec.model_validate(
        {"variables": DEMO_VARIABLES, "concurrency": 2, "pipelines": DEMO_PIPELINES}
    )
    assert load_project(EXAMPLE.read_bytes(), source=EXAMPLE.name, registry=registry) == demo


def test_the_example_runs_headless(tmp_path: Path) -> None:
    build_source_db(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(EXAMPLE)],
        env={"PIPEDECK_DATA_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "out" / "revenue_by_country.csv").read_text().startswith("country,segment,")
    with sqlite3.connect(tmp_path / "out" / "warehouse.sqlite3") as db:
        summary = "SELECT sum(orders), round(sum(revenue), 2) FROM segment_revenue"
        orders, revenue = db.execute(summary).fetchone()
        raw = db.execute("SELECT count(*), round(sum(amount), 2) FROM orders_raw").fetchone()
    assert (orders, revenue) == raw
    assert orders == 200


@pytest.fixture(scope="session")
def pipeline_flow_python() -> Path:
    from bench.pipeline_flow_env import BaselineUnavailable, ensure_venv

    try:
        return ensure_venv()
    except (BaselineUnavailable, OSError) as exc:
        pytest.skip(f"pipeline-flow {exc}")


def test_pipeline_flow_parses_the_example_as_we_do(pipeline_flow_python: Path) -> None:
    kinds = {p.name: p.kind.value for p in registry.all() if p.kind.value != "secret"}
    run = subprocess.run(
        [str(pipeline_flow_python), "-c", PIPELINE_FLOW_PARSE, str(EXAMPLE), json.dumps(kinds)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    ours = load_project(EXAMPLE.read_bytes())
    assert theirs["concurrency"] == ours.concurrency
    assert list(theirs["pipelines"]) == list(ours.pipelines)
    for name, pipeline in ours.pipelines.items():
        seen = theirs["pipelines"][name]
        assert seen["type"] == pipeline.type.value
        assert (seen["needs"] or []) == pipeline.needs
        for phase in pipeline.phases.present():
            steps = pipeline.phase(phase).steps
            assert seen["steps"][phase.value] == [s.id for s in steps]
            # pipeline-flow substitutes variables while parsing; everything else must read the same
            expected = [
                {k: DEMO_VARIABLES["ORDERS_FILE"] if "variables." in str(v) else v for k, v in s.args.items()}
                for s in steps
            ]
            assert seen["args"][phase.value] == expected
