"""Step outputs: summaries of every table, Parquet kept at each boundary, resume from a step, previews."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import BaseModel

from orchestrator.events import MemorySink, Status, StepFinished
from orchestrator.outputs import KeepOutputs, StepOutput, read_manifest, summarize
from orchestrator.plugins import Frame, StepContext, TransformPlugin
from orchestrator.preview import PreviewRefused, preview_project, preview_spec
from orchestrator.resume import ResumeFrom, ResumeRefused
from orchestrator.scheduler import RunResult, run_project
from orchestrator.spec import ProjectSpec
from tests.orchestrator.engine_helpers import TRACKER, make_registry, pipeline, project, step


@pytest.fixture(autouse=True)
def fresh_tracker() -> None:
    TRACKER.__init__()  # type: ignore[misc]


async def run(spec: ProjectSpec, **options: Any) -> tuple[RunResult, MemorySink]:
    sink = MemorySink()
    result = await run_project(spec, sinks=[sink], registry=make_registry(), env={}, **options)
    return result, sink


def states(sink: MemorySink) -> dict[str, str]:
    """step id -> the status of its last StepFinished."""
    return {e.step: e.status for e in sink.of(StepFinished)}


def five_steps(fail_third: str | None = None) -> ProjectSpec:
    """extract -> t1 -> t2 -> t3 (fails with ``fail_third``) -> t4 -> load."""
    transform = [step("tag_transform", f"t{i}", tag=f"t{i}") for i in (1, 2, 3, 4)]
    if fail_third:
        transform[2]["args"]["fail"] = fail_third
    return project({"p": pipeline([step("wait_extract", "read", rows=5)], transform=transform)})


def extract_calls() -> int:
    return sum(1 for m in TRACKER.names() if m == "start p.read")


async def test_kept_outputs_at_each_boundary_equal_what_the_next_step_received(tmp_path: Path) -> None:
    seen: list[StepOutput] = []
    options = KeepOutputs(directory=tmp_path, on_output=seen.append)
    result, _ = await run(five_steps(), outputs=options)
    assert result.status == Status.SUCCEEDED
    folder = tmp_path / "p"
    manifest = read_manifest(folder)
    assert manifest is not None and manifest["status"] == "succeeded"
    kept = {
        key: pl.read_parquet(folder / entry["file"])
        for key, entry in manifest["steps"].items()
        if entry["file"]
    }
    assert list(kept) == ["extract.read", "transform.t1", "transform.t2", "transform.t3", "transform.t4"]
    # each transform step tagged its input with one column: its input is the previous kept table
    order = list(kept.values())
    for before, after in zip(order, order[1:], strict=False):
        assert_frame_equal(after.drop(after.columns[-1]), before)
    assert_frame_equal(kept["transform.t4"], TRACKER.loads["p.write"])  # what load received
    assert [s.step for s in seen] == ["read", "t1", "t2", "t3", "t4"]
    assert seen[-1].rows == 5 and seen[-1].nulls == {"n": 0, "t1": 0, "t2": 0, "t3": 0, "t4": 0}
    assert seen[-1].columns == [("n", "Int64"), *[(f"t{i}", "String") for i in (1, 2, 3, 4)]]
    assert seen[-1].sample[0] == [0, "t1", "t2", "t3", "t4"]


async def test_resume_after_transform_step_3_failed_runs_exactly_steps_3_on(tmp_path: Path) -> None:
    first, sink = await run(five_steps(fail_third="bad data"), outputs=KeepOutputs(directory=tmp_path))
    assert first.status == Status.FAILED and states(sink)["t3"] == Status.FAILED
    assert extract_calls() == 1
    TRACKER.__init__()  # type: ignore[misc]

    again = tmp_path / "again"
    seen: list[StepOutput] = []
    result, sink = await run(
        five_steps(),  # the cause fixed
        outputs=KeepOutputs(directory=again, on_output=seen.append),
        resume=ResumeFrom(tmp_path),
    )
    assert result.status == Status.SUCCEEDED
    assert extract_calls() == 0  # extract was not called again
    ran = [m.split(" ")[1] for m in TRACKER.names() if m.startswith("transform ")]
    assert ran == ["t3", "t4"]
    assert states(sink) == {
        "read": Status.REUSED,
        "t1": Status.REUSED,
        "t2": Status.REUSED,
        "t3": Status.SUCCEEDED,
        "t4": Status.SUCCEEDED,
        "write": Status.SUCCEEDED,
    }
    assert TRACKER.loads["p.write"].columns == ["n", "t1", "t2", "t3", "t4"]
    assert [(s.step, s.reused) for s in seen][:3] == [("read", True), ("t1", True), ("t2", True)]
    manifest = read_manifest(again / "p")  # the new run keeps everything again: it can be resumed too
    assert manifest is not None and set(manifest["steps"]) >= {"extract.read", "transform.t2", "transform.t4"}


async def test_resume_is_refused_after_an_edit_before_the_failed_step(tmp_path: Path) -> None:
    await run(five_steps(fail_third="bad data"), outputs=KeepOutputs(directory=tmp_path))
    edited = five_steps()
    edited.pipelines["p"].phases.transform.steps[0].args["tag"] = "other"  # type: ignore[union-attr]
    with pytest.raises(ResumeRefused, match=r"changed before step 't3'.*'t1' \(transform\) changed"):
        await run(edited, resume=ResumeFrom(tmp_path))
    edited_after = five_steps()  # an edit of the failed step itself (the fix) is fine
    edited_after.pipelines["p"].phases.transform.steps[2].args["tag"] = "fixed"  # type: ignore[union-attr]
    result, _ = await run(edited_after, resume=ResumeFrom(tmp_path))
    assert result.status == Status.SUCCEEDED


async def test_resume_is_refused_when_the_kept_output_is_gone(tmp_path: Path) -> None:
    await run(five_steps(fail_third="bad data"), outputs=KeepOutputs(directory=tmp_path))
    (tmp_path / "p" / "transform.t2.parquet").unlink()
    with pytest.raises(ResumeRefused, match="kept output of step 't2' .* is gone"):
        await run(five_steps(), resume=ResumeFrom(tmp_path))
    with pytest.raises(ResumeRefused, match="no kept outputs"):
        await run(five_steps(), resume=ResumeFrom(tmp_path / "nothing"))


async def test_resume_from_a_chosen_step_and_from_an_extract_step_reusing_its_siblings(
    tmp_path: Path,
) -> None:
    spec = project(
        {
            "p": pipeline(
                [step("wait_extract", "a", rows=2), step("wait_extract", "b", rows=3)],
                transform=[step("tag_transform", "t1", tag="t1")],
            )
        }
    )
    await run(spec, outputs=KeepOutputs(directory=tmp_path))
    TRACKER.__init__()  # type: ignore[misc]
    result, sink = await run(spec, resume=ResumeFrom(tmp_path, {"p": "extract.b"}))
    assert result.status == Status.SUCCEEDED
    assert [m for m in TRACKER.names() if m.startswith("start")] == ["start p.b", "start p.write"]
    assert states(sink)["a"] == Status.REUSED and states(sink)["b"] == Status.SUCCEEDED
    assert TRACKER.loads["p.write"].height == 5
    TRACKER.__init__()  # type: ignore[misc]
    result, sink = await run(spec, resume=ResumeFrom(tmp_path, {"p": "load.write"}))
    assert states(sink) == {
        "a": Status.REUSED,
        "b": Status.REUSED,
        "merge": Status.REUSED,
        "t1": Status.REUSED,
        "write": Status.SUCCEEDED,
    }
    assert TRACKER.loads["p.write"].columns == ["n", "t1"]


async def test_lazy_tables_are_kept_by_streaming_them_to_parquet(tmp_path: Path) -> None:
    spec = project(
        {"p": pipeline([step("lazy_extract", "read")], transform=[step("tag_transform", "t", tag="t")])}
    )
    seen: list[StepOutput] = []
    result, sink = await run(spec, outputs=KeepOutputs(directory=tmp_path, on_output=seen.append))
    assert result.status == Status.SUCCEEDED
    assert seen[0].rows == 3 and seen[0].kept == "extract.read.parquet"
    extract_done = next(e for e in sink.of(StepFinished) if e.step == "read")
    assert extract_done.rows_out == 3  # known once kept


def test_a_summary_caps_its_sample_and_cuts_long_values() -> None:
    frame = pl.DataFrame({"text": ["x" * 500] * 300, "n": [None, *range(299)]})
    summary = summarize(frame, KeepOutputs(sample_bytes=4000), place=("p", "extract", "read"))
    assert summary.rows == 300 and summary.nulls == {"text": 0, "n": 1}
    assert summary.truncated and 0 < len(summary.sample) < 100
    assert len(summary.sample[0][0]) == 200 and summary.sample[0][0].endswith("\u2026")
    assert summary.sample[0][1] is None


async def test_a_preview_reads_a_limited_input_and_never_runs_load(tmp_path: Path) -> None:
    spec = five_steps()
    data = spec.model_dump(mode="json")
    cut = preview_project(data, "p", "transform.t2")
    assert list(cut.pipelines["p"].phases.transform.steps) and cut.pipelines["p"].phases.load is None  # type: ignore[union-attr]
    seen: list[StepOutput] = []
    result, sink = await run(cut, outputs=KeepOutputs(on_output=seen.append), row_limit=2)
    assert result.status == Status.SUCCEEDED
    assert [s.step for s in seen] == ["read", "t1", "t2"]
    assert seen[-1].rows == 2  # wait_extract made 5 rows: the engine cut them to the limit
    assert "p.write" not in TRACKER.loads
    assert not list(tmp_path.iterdir())


def test_a_preview_of_a_draft_ignores_the_steps_after_it_and_refuses_at_load_steps() -> None:
    draft = five_steps().model_dump(mode="json")
    draft["pipelines"]["p"]["phases"]["transform"]["steps"][3]["args"] = {}  # t4 broken: cut away
    del draft["pipelines"]["p"]["phases"]["load"]  # not designed yet
    assert preview_project(draft, "p", "transform.t3").pipelines["p"].phases.transform is not None
    with pytest.raises(PreviewRefused, match="transform-at-load"):
        preview_spec(
            {"pipelines": {"p": {"phases": {"extract": {}, "transform_at_load": {"steps": []}}}}},
            "p",
            "transform_at_load.x",
        )


class LeakTransform(TransformPlugin):
    """Puts a secret into its table (a careless plugin): the sample must not show it."""

    name = "leak_transform"

    class Args(BaseModel):
        secret: str

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        return data.with_columns(pl.lit(f"key={ctx.secrets[self.args.secret]}").alias("leak"))


async def test_a_secret_in_a_sample_is_masked() -> None:
    spec = project(
        {
            "p": pipeline(
                [step("wait_extract", "read")], transform=[step("leak_transform", "leak", secret="TOKEN")]
            )
        },
        secrets={"TOKEN": {"plugin": "env_secret", "args": {"name": "TOKEN"}}},
    )
    registry = make_registry()
    registry.register(LeakTransform)
    seen: list[StepOutput] = []
    result = await run_project(
        spec,
        registry=registry,
        env={},
        secrets=lambda name, key: "hunter2-very-secret",
        outputs=KeepOutputs(on_output=seen.append),
    )
    assert result.status == Status.SUCCEEDED
    assert seen[-1].sample[0][-1] == "key=***"
