"""``python -m orchestrator``, run as a user runs it: in a subprocess, asserting exit codes and output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import HumanProgress
from orchestrator.events import (
    PipelineFinished,
    PipelineStarted,
    RunFinished,
    RunStarted,
    Status,
    StepFinished,
    StepLog,
    StepStarted,
)

GOOD = """\
variables:
  ROWS: 3
---
concurrency: 2
pipelines:
  first:
    type: ETL
    phases:
      extract:
        steps:
          - {id: read, plugin: sleep_extract, args: {seconds: 0.01, rows: "${{ variables.ROWS }}"}}
      load:
        steps:
          - {id: write, plugin: sleep_load, args: {seconds: 0.01}}
  second:
    type: ETL
    needs: first
    phases:
      extract:
        steps:
          - {id: read, plugin: sleep_extract, args: {seconds: 0.01}}
      load:
        steps:
          - {id: write, plugin: sleep_load, args: {seconds: 0.01}}
"""

FAILING = """\
pipelines:
  orders:
    type: ETL
    phases:
      extract:
        steps:
          - {id: read, plugin: csv_extract, args: {path: missing.csv}}
      load:
        steps:
          - {id: write, plugin: sleep_load}
  after:
    type: ETL
    needs: orders
    phases:
      extract:
        steps:
          - {id: read, plugin: sleep_extract}
      load:
        steps:
          - {id: write, plugin: sleep_load}
"""

INVALID = """\
pipelines:
  orders:
    type: ETL
    phases:
      extract:
        steps:
          - {id: read, plugin: sleep_extract}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPEDECK_DATA_ROOT": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, text in {"good.yaml": GOOD, "failing.yaml": FAILING, "invalid.yaml": INVALID}.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_validate_accepts_a_good_file(files: Path) -> None:
    done = cli("validate", "good.yaml", cwd=files)
    assert (done.returncode, done.stdout) == (0, "good.yaml: valid (2 pipeline(s): first, second)\n")


def test_the_installed_command_validates_and_exits_with_the_codes_of_python_m(files: Path) -> None:
    command = Path(sys.executable).parent / "pipedeck-orchestrator"  # pyproject's console script
    if not command.exists():
        pytest.skip(f"{command} is not installed (pip install -e . makes it)")
    env = {**os.environ, "PIPEDECK_DATA_ROOT": str(files)}
    good = subprocess.run(
        [command, "validate", "good.yaml"], cwd=files, env=env, capture_output=True, text=True
    )
    assert (good.returncode, good.stdout) == (0, "good.yaml: valid (2 pipeline(s): first, second)\n")
    bad = subprocess.run(
        [command, "validate", "invalid.yaml"], cwd=files, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "line 3, column 5" in bad.stderr


def test_validate_reports_line_column_and_path_with_exit_code_2(files: Path) -> None:
    done = cli("validate", "invalid.yaml", cwd=files)
    assert done.returncode == 2
    problem = (
        "line 3, column 5: pipelines.orders: a pipeline of type ETL is missing the required phase(s) load"
    )
    assert done.stderr.startswith("invalid.yaml: ")
    assert problem in done.stderr


def test_a_missing_file_is_invalid_input(files: Path) -> None:
    done = cli("run", "nope.yaml", cwd=files)
    assert done.returncode == 2
    assert done.stderr == "nope.yaml: cannot read the file (No such file or directory)\n"


def test_run_prints_progress_and_exits_0(files: Path) -> None:
    done = cli("run", "good.yaml", cwd=files)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "first: running"
    assert "  first extract/read [INFO] slept 0.010 s" in lines
    assert any(
        line.startswith("  first extract/read: succeeded in ") and line.endswith(", 3 rows") for line in lines
    )
    assert lines[-1].startswith("run succeeded in ")
    assert "\x1b" not in done.stdout  # not a terminal: plain lines


def test_a_failed_pipeline_exits_1_and_says_why(files: Path) -> None:
    done = cli("run", "failing.yaml", cwd=files)
    assert done.returncode == 1
    assert (
        "  pipeline 'orders', phase extract, step 'read' (csv_extract): "
        f"file 'missing.csv' not found in the data root {files} (looked for {files / 'missing.csv'})"
    ) in done.stdout.splitlines()
    assert "after: skipped in 0.00 s" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1].endswith(": 1 pipeline(s) failed: orders")


def test_events_json_prints_one_parsable_event_per_line(files: Path) -> None:
    done = cli("run", "good.yaml", "--events", "json", "--pipeline", "first", "--var", "ROWS=7", cwd=files)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["kind"] == "run_started" and events[0]["pipelines"] == ["first"]
    assert events[-1]["kind"] == "run_finished" and events[-1]["status"] == "succeeded"
    read = [e for e in events if e["kind"] == "step_finished" and e["step"] == "read"]
    assert read[0]["rows_out"] == 7  # the --var override reached the step's args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "third"], "no pipeline named 'third' in this project (it has: first, second)\n"),
        (["--var", "ROWS"], "--var expects KEY=VALUE, got 'ROWS'\n"),
    ],
)
def test_bad_run_options_are_invalid_input(files: Path, args: list[str], message: str) -> None:
    done = cli("run", "good.yaml", *args, cwd=files)
    assert (done.returncode, done.stderr) == (2, message)


def test_plugins_lists_built_ins_and_entry_point_plugins(files: Path) -> None:
    done = cli("plugins", cwd=files)
    assert done.returncode == 0
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert {"csv_extract", "join_merge", "sql_execute", "sleep_extract", "sleep_load"} <= set(names)

    described = {p["name"]: p for p in json.loads(cli("plugins", "--json", cwd=files).stdout)}
    assert described["sleep_extract"]["kind"] == "extract"
    assert described["sleep_extract"]["module"] == "pipedeck_sleep"
    assert set(described["sleep_extract"]["args_schema"]["properties"]) == {"seconds", "rows"}


def test_on_a_terminal_progress_lines_are_rewritten_in_place() -> None:
    out = io.StringIO()
    progress = HumanProgress(out, live=True)
    progress.REDRAW_EVERY = 0  # draw on every event
    step = {"pipeline": "p", "phase": "extract", "plugin": "x"}
    events = [
        RunStarted(pipelines=["p", "q"]),
        PipelineStarted(pipeline="p"),
        PipelineStarted(pipeline="q"),
        StepStarted(step="read", **step),
        StepStarted(step="other", **step),
        StepLog(pipeline="p", phase="extract", step="read", level="INFO", message="hello"),
        StepFinished(step="read", status=Status.SUCCEEDED, duration=0.5, rows_out=3, **step),
        StepFinished(step="other", status=Status.FAILED, duration=0.5, error="boom", **step),
    ]
    for event in events:
        progress(event)
    assert "\x1b[4F\x1b[J" in out.getvalue()  # moved up over the four live lines to redraw them
    assert screen(out.getvalue()) == [
        "  p extract/read [INFO] hello",  # logs scroll above the live block
        "p: running",
        "  p extract/read: succeeded in 0.50 s, 3 rows",
        "  p extract/other: failed in 0.50 s",
        "q: running",
    ]
    progress(PipelineFinished(pipeline="p", status=Status.FAILED, duration=0.6, error="it broke"))
    progress(PipelineFinished(pipeline="q", status=Status.SUCCEEDED, duration=0.7))
    progress(RunFinished(status=Status.FAILED, duration=0.8, error="1 pipeline(s) failed: p"))
    assert screen(out.getvalue()) == [
        "  p extract/read [INFO] hello",
        "p: failed in 0.60 s",  # a finished pipeline leaves the live block, its failed steps stay
        "  p extract/other: failed in 0.50 s",
        "  it broke",
        "q: succeeded in 0.70 s",
        "run failed in 0.80 s: 1 pipeline(s) failed: p",
    ]


def screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: handles only the two sequences the progress uses."""
    lines: list[str] = []
    for chunk in re.split(r"(\x1b\[\d*F\x1b\[J)", text):
        if chunk.startswith("\x1b["):
            del lines[len(lines) - int(chunk[2:].split("F")[0]) :]
        else:
            lines.extend(chunk.splitlines())
    return lines


RESUMABLE = """\
pipelines:
  orders:
    type: ETL
    phases:
      extract:
        steps:
          - {id: read, plugin: csv_extract, args: {path: orders.csv}}
      transform:
        steps:
          - {id: big, plugin: filter_rows, args: {expr: amount > 10}}
          - {id: typed, plugin: cast_columns, args: {types: {note: Int64}}}
      load:
        steps:
          - {id: write, plugin: csv_load, args: {path: out/orders.csv}}
"""


def test_keep_outputs_then_resume_from_the_failed_step(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(RESUMABLE)
    (tmp_path / "orders.csv").write_text("id,amount,note\n1,5,x\n2,20,y\n3,30,7\n")
    failed = cli("run", "run.yaml", "--keep-outputs", "kept", cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert sorted(p.name for p in (tmp_path / "kept" / "orders").iterdir()) == [
        "extract.read.parquet",
        "manifest.json",
        "transform.big.parquet",
    ]
    (tmp_path / "orders.csv").unlink()  # extract cannot run again: the resume must not need it
    (tmp_path / "run.yaml").write_text(RESUMABLE.replace("amount > 10", "amount > 1"))
    edited = cli("run", "run.yaml", "--resume", "kept", cwd=tmp_path)
    assert edited.returncode == 2 and "changed before step 'typed'" in edited.stderr
    (tmp_path / "run.yaml").write_text(RESUMABLE.replace("note: Int64", "id: Int32"))  # the fix
    resumed = cli("run", "run.yaml", "--resume", "kept", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "orders extract/read: reused" in resumed.stdout
    assert (tmp_path / "out" / "orders.csv").read_text().splitlines() == [
        "id,amount,note",
        "2,20,y",
        "3,30,7",
    ]
    again = cli("run", "run.yaml", "--resume", "kept", cwd=tmp_path)
    assert again.returncode == 2 and "nothing to resume" in again.stderr
