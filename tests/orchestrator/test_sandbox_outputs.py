"""Step outputs of a run in a child process: summaries in their own frames, Parquet in the data root,
previews cut after their step, resumes refused with the reason as the run's error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.control import RunControl
from orchestrator.sandbox import Limits, RunRequest, Sandbox


def spec(fail: bool = False) -> dict[str, Any]:
    columns = {"id": "row_number", "amount": "i * 10"}
    transform = [{"id": "big", "plugin": "filter_rows", "args": {"expr": "amount > 10"}}]
    if fail:
        transform.append({"id": "bad", "plugin": "filter_rows", "args": {"expr": "nope > 1"}})
    return {
        "pipelines": {
            "p": {
                "type": "ETL",
                "phases": {
                    "extract": {
                        "steps": [
                            {"id": "gen", "plugin": "generate_rows", "args": {"rows": 50, "columns": columns}}
                        ]
                    },
                    "transform": {"steps": transform},
                    "load": {"steps": [{"id": "out", "plugin": "csv_load", "args": {"path": "out.csv"}}]},
                },
            }
        }
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    yield box
    box.close()


async def child_run(
    sandbox: Sandbox, root: Path, data: dict[str, Any], **extra: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    request = RunRequest(run_id="t", spec=data, data_root=str(root), limits=Limits(threads=1), **extra)
    ended = await sandbox.run(request, events.extend, RunControl(), outputs.extend)
    assert ended.clean, ended.stderr
    return events, outputs


def finished(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e["kind"] == "run_finished")


async def test_a_child_run_keeps_its_outputs_and_resumes(sandbox: Sandbox, tmp_path: Path) -> None:
    keep = {"outputs": {"directory": ".outputs/run-1", "sample_rows": 5}}
    events, outputs = await child_run(sandbox, tmp_path, spec(fail=True), **keep)
    assert finished(events)["status"] == "failed"
    assert all(e["kind"] != "outputs" for e in events)  # summaries never travel with the events
    assert [(o["step"], o["rows"], len(o["sample"])) for o in outputs] == [("gen", 50, 5), ("big", 48, 5)]
    assert (tmp_path / ".outputs/run-1/p/transform.big.parquet").is_file()

    resume = {"directory": ".outputs/run-1", "steps": {"p": "transform.bad"}}
    events, _ = await child_run(sandbox, tmp_path, spec(fail=True), resume=resume)
    assert "no kept outputs" not in finished(events)["error"]
    assert [e["status"] for e in events if e["kind"] == "step_finished"][:2] == ["reused", "reused"]

    edited = spec(fail=True)
    edited["pipelines"]["p"]["phases"]["extract"]["steps"][0]["args"]["rows"] = 40
    events, _ = await child_run(sandbox, tmp_path, edited, resume=resume)
    assert finished(events)["status"] == "failed"
    assert "changed before step 'bad'" in finished(events)["error"]

    outside = {"directory": "../elsewhere", "steps": {"p": "transform.big"}}
    events, _ = await child_run(sandbox, tmp_path, spec(), resume=outside)
    assert finished(events)["error"] == "../elsewhere is outside the data root"


async def test_a_child_preview_stops_after_its_step_and_writes_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    preview = {"pipeline": "p", "step": "transform.big", "row_limit": 10}
    events, outputs = await child_run(
        sandbox, tmp_path, spec(fail=True), preview=preview, outputs={"directory": ".outputs/x"}
    )
    assert finished(events)["status"] == "succeeded"
    assert [(o["step"], o["rows"]) for o in outputs] == [("gen", 10), ("big", 8)]
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / ".outputs").exists()
