"""A run's process: a crash, a wall-time limit or a worker shutting down end the run, never the worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orchestrator.control import RunControl
from orchestrator.sandbox import ChildExit, Limits, RunRequest, Sandbox
from tests.processes import alive, descendants
from tests.security.conftest import Attack, wait

SLEEPY = {
    "pipelines": {
        "p": {
            "type": "ETL",
            "phases": {
                "extract": {"steps": [{"id": "nap", "plugin": "sleep_extract", "args": {"seconds": 60}}]},
                "load": {"steps": [{"id": "out", "plugin": "sleep_load", "args": {"seconds": 0}}]},
            },
        }
    }
}


def _project(pipeline: str, extract: str) -> str:
    return (
        f"pipelines:\n  {pipeline}:\n    type: ETL\n    phases:\n"
        f"      extract: {{steps: [{extract}]}}\n"
        "      load: {steps: [{id: out, plugin: csv_load, args: {path: out.csv}}]}\n"
    )


@pytest.mark.usefixtures("worker", "probe_plugins")
@pytest.mark.parametrize(("how", "signal_name"), [("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_a_crashing_run_fails_with_a_clear_message_and_the_worker_goes_on(
    attack: Attack, how: str, signal_name: str
) -> None:
    attack.upload(_project("crash", f"{{id: boom, plugin: crash_extract, args: {{how: {how}}}}}"))
    run = wait(attack.start("crash"))  # type: ignore[arg-type]
    assert run.state == "failed"
    assert run.error == f"the run's process crashed ({signal_name})"
    step = run.pipeline_runs.get().step_runs.get(step_id="boom")
    assert step.state == "failed" and step.error == run.error
    assert wait(attack.start("rival_orders")).state == "succeeded"  # type: ignore[arg-type]


@pytest.mark.usefixtures("worker", "probe_plugins")
def test_a_run_that_exits_early_fails(attack: Attack) -> None:
    attack.upload(_project("quit", "{id: bye, plugin: crash_extract, args: {how: exit}}"))
    run = wait(attack.start("quit"))  # type: ignore[arg-type]
    assert run.state == "failed"
    assert run.error == "the run's process ended with exit code 3 before the run finished"


@pytest.mark.usefixtures("worker")
def test_a_run_over_its_wall_time_is_stopped(attack: Attack) -> None:
    team = attack.crew.other_team
    team.run_wall_seconds = 1
    team.save()
    attack.upload(_project("nap", "{id: nap, plugin: sleep_extract, args: {seconds: 60}}"))
    started = time.monotonic()
    run = wait(attack.start("nap"))  # type: ignore[arg-type]
    assert run.state == "failed"
    assert run.error == "time limit of 1 s reached: the run was stopped"
    assert time.monotonic() - started < 15


async def test_a_worker_that_stops_kills_its_runs_processes(tmp_path: Path) -> None:
    sandbox = Sandbox()
    started = asyncio.Event()
    pids: list[int] = []

    def on_events(events: list[dict[str, object]]) -> None:
        if any(e["kind"] == "step_started" for e in events):
            started.set()

    request = RunRequest(run_id="t", spec=SLEEPY, data_root=str(tmp_path), limits=Limits(threads=1))
    task = asyncio.create_task(sandbox.run(request, on_events, RunControl()))
    try:
        await asyncio.wait_for(started.wait(), 60)
        assert sandbox.pid is not None
        pids = descendants(sandbox.pid)
        assert pids, "no run process found"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "the run's process outlived the worker's shutdown"
            await asyncio.sleep(0.02)
    finally:
        sandbox.close()


@pytest.mark.parametrize(
    ("status", "stderr", "expected"),
    [
        (9, "", "the run's process was killed (SIGKILL); the machine may be out of memory"),
        (24, "", "CPU time limit of 7 s reached"),
        (6, "memory allocation of 1073741824 bytes failed", "memory limit of 512 MiB reached"),
        (256 * 3, "", "the run's process ended with exit code 3 before the run finished"),
        (None, "", "the run's process ended without a word (its status is unknown)"),
    ],
)
def test_how_a_child_ended_reads_for_a_user(status: int | None, stderr: str, expected: str) -> None:
    limits = Limits(cpu_seconds=7, memory_mib=512)
    assert ChildExit(pid=1, status=status, stderr=stderr).failure(limits) == expected
