"""The pipeline-flow 1.0.8 baseline: its own virtual environment, and the same workloads run there.

Imported by the bench (stdlib only at module level): ``ensure_venv()`` creates
``.bench-venvs/pipeline-flow`` on first use and ``measure(texts, ...)`` runs workloads in it.
Run by that environment's Python as a script, it reads a job as JSON on stdin, runs the YAML with
``pipeline_flow`` and plugins written against its API (below), and prints the timings as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VERSION = "1.0.8"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venvs" / "pipeline-flow"
PYTHON_CANDIDATES = ("python3.12", "python3.13", "/root/.pyenv/versions/3.12.1/bin/python3.12")


class BaselineUnavailable(RuntimeError):
    """pipeline-flow could not be installed (no Python >= 3.12, no network...): the bench says why."""


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _installed() -> bool:
    python = _venv_python()
    if not python.exists():
        return False
    check = "import importlib.metadata as m, pipeline_flow; print(m.version('pipeline-flow'))"
    done = subprocess.run([python, "-c", check], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == VERSION


def _base_python() -> str:
    for candidate in PYTHON_CANDIDATES:
        path = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if path is None:
            continue
        ok = subprocess.run([path, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"]).returncode == 0
        if ok:
            return path
    raise BaselineUnavailable("pipeline-flow needs Python >= 3.12; install python3.12 to get the baseline")


def ensure_venv() -> Path:
    """The baseline's Python, creating the venv and installing pipeline-flow on first use (or reusing it)."""
    if _installed():
        return _venv_python()
    print(
        f"creating {VENV.relative_to(ROOT)} with pipeline-flow=={VERSION} (first run only)...",
        file=sys.stderr,
    )
    if not _venv_python().exists():
        subprocess.run([_base_python(), "-m", "venv", str(VENV)], check=True)
    pip = [str(_venv_python()), "-m", "pip", "install", "-q", f"pipeline-flow=={VERSION}"]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode != 0 or not _installed():
        raise BaselineUnavailable(
            f"pip install pipeline-flow=={VERSION} failed: {done.stderr.strip()[-500:]}"
        )
    return _venv_python()


def measure(texts: dict[str, str], *, repeat: int, logged: bool) -> dict[str, dict[str, float]]:
    """For each named YAML text: the best-of-``repeat`` seconds to parse, to run, and for both, under
    pipeline-flow (one process; each text once before timing, so imports are not counted)."""
    job = json.dumps({"texts": texts, "repeat": repeat, "logged": logged})
    done = subprocess.run(
        [str(ensure_venv()), __file__], input=job, capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if done.returncode != 0:
        raise BaselineUnavailable(f"pipeline-flow run failed: {done.stderr.strip()[-800:]}")
    result: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- everything below runs inside the pipeline-flow environment ------------------------------------------


def _define_plugins() -> None:
    """The bench plugins, written against pipeline-flow's API (registered by ``plugin_name=``)."""
    import asyncio

    from pipeline_flow.plugins import IExtractPlugin, ILoadPlugin, IMergeExtractPlugin, ITransformPlugin

    one_row = [{"x": 1}]

    class WaitExtract(IExtractPlugin, plugin_name="bench_wait_extract"):  # type: ignore[call-arg,misc]
        def __init__(self, plugin_id: str, seconds: float = 0.0) -> None:
            super().__init__(plugin_id)
            self.seconds = seconds

        async def __call__(self) -> Any:
            if self.seconds:
                await asyncio.sleep(self.seconds)
            return one_row

    class ConcatMerge(IMergeExtractPlugin, plugin_name="bench_concat_merge"):  # type: ignore[call-arg,misc]
        def __call__(self, extracted_data: dict[str, Any]) -> Any:
            return [row for rows in extracted_data.values() for row in rows]

    class Identity(ITransformPlugin, plugin_name="bench_identity"):  # type: ignore[call-arg,misc]
        def __call__(self, data: Any) -> Any:
            return data

    class WaitLoad(ILoadPlugin, plugin_name="bench_wait_load"):  # type: ignore[call-arg,misc]
        def __init__(self, plugin_id: str, seconds: float = 0.0) -> None:
            super().__init__(plugin_id)
            self.seconds = seconds

        async def __call__(self, data: Any) -> None:
            if self.seconds:
                await asyncio.sleep(self.seconds)


def _run_job(job: dict[str, Any]) -> dict[str, dict[str, float]]:
    import asyncio
    import logging

    if job["logged"]:  # pipeline-flow's shipped config: INFO records, formatted, to a stream
        stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        fmt = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
        logging.basicConfig(level=logging.INFO, stream=stream, format=fmt)
    else:
        logging.basicConfig(level=logging.WARNING, stream=open(os.devnull, "w"))  # noqa: SIM115

    from pipeline_flow.core.orchestrator import PipelineOrchestrator
    from pipeline_flow.core.parsers import YamlParser, parse_pipelines
    from pipeline_flow.core.plugin_loader import load_plugins

    _define_plugins()

    def once(text: str) -> tuple[float, float]:
        # the same calls as pipeline_flow.entrypoint.start_orchestration, timed apart
        t0 = time.perf_counter()
        parser = YamlParser(text)
        load_plugins(parser.plugins)
        pipelines = parse_pipelines(parser.pipelines)
        config = parser.initialize_yaml_config()
        t1 = time.perf_counter()
        asyncio.run(PipelineOrchestrator(config).execute_pipelines(pipelines))
        return t1 - t0, time.perf_counter() - t1

    results = {}
    for name, text in job["texts"].items():
        once(text)  # warm up
        timings = [once(text) for _ in range(job["repeat"])]
        results[name] = {
            "parse": min(p for p, _ in timings),
            "run": min(r for _, r in timings),
            "total": min(p + r for p, r in timings),
        }
    return results


if __name__ == "__main__":
    print(json.dumps(_run_job(json.loads(sys.stdin.read()))))
