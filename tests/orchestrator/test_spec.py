"""The structural rules of a project file, enforced by the pydantic spec (messages asserted exactly)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.errors import problems_from_validation_error
from orchestrator.spec import PipelineSpec, ProjectSpec, StepSpec, check_needs, find_cycle


def step(plugin: str = "p", **kw: Any) -> dict[str, Any]:
    return {"plugin": plugin, **kw}


def pipeline(type_: str = "ETL", needs: Any = None, **phases: Any) -> dict[str, Any]:
    defaults = {
        "ETL": {"extract": {"steps": [step("e")]}, "load": {"steps": [step("l")]}},
        "ELT": {
            "extract": {"steps": [step("e")]},
            "load": {"steps": [step("l")]},
            "transform_at_load": {"steps": [step("t")]},
        },
    }
    body: dict[str, Any] = {"type": type_, "phases": {**defaults.get(type_, defaults["ELT"]), **phases}}
    body["phases"] = {k: v for k, v in body["phases"].items() if v is not None}
    if needs is not None:
        body["needs"] = needs
    return body


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        ProjectSpec.model_validate(data)
    return [str(p) for p, _ in problems_from_validation_error(info.value)]


def test_a_minimal_etl_pipeline_is_valid() -> None:
    spec = ProjectSpec.model_validate({"pipelines": {"a": pipeline()}})
    assert spec.concurrency == 2
    assert spec.pipelines["a"].phases.present() == ["extract", "load"]


@pytest.mark.parametrize(
    ("type_", "phases", "message"),
    [
        ("ETL", {"load": None}, "a pipeline of type ETL is missing the required phase(s) load"),
        (
            "ETL",
            {"transform_at_load": {"steps": [step()]}},
            "a pipeline of type ETL does not allow the phase(s) transform_at_load",
        ),
        (
            "ELT",
            {"transform_at_load": None},
            "a pipeline of type ELT is missing the required phase(s) transform_at_load",
        ),
        ("ELT", {"transform": {"steps": []}}, "a pipeline of type ELT does not allow the phase(s) transform"),
        (
            "ETLT",
            {"extract": None, "transform_at_load": None},
            "a pipeline of type ETLT is missing the required phase(s) extract, transform_at_load",
        ),
        (
            "ETL",
            {"load": None, "transform_at_load": {"steps": [step()]}},
            "a pipeline of type ETL is missing the required phase(s) load "
            "and does not allow the phase(s) transform_at_load",
        ),
    ],
)
def test_phases_are_required_and_allowed_per_type(type_: str, phases: dict[str, Any], message: str) -> None:
    assert problems({"pipelines": {"orders": pipeline(type_, **phases)}}) == [f"pipelines.orders: {message}"]


@pytest.mark.parametrize("type_", ["ETL", "ETLT"])
def test_transform_is_optional_where_allowed(type_: str) -> None:
    with_transform = pipeline(type_, transform={"steps": [step("t")]})
    assert ProjectSpec.model_validate({"pipelines": {"a": with_transform}}).pipelines["a"].phases.transform
    assert (
        ProjectSpec.model_validate({"pipelines": {"a": pipeline(type_)}}).pipelines["a"].phases.transform
        is None
    )


def test_an_unknown_type_lists_the_types() -> None:
    assert problems({"pipelines": {"a": {"type": "EL", "phases": {}}}}) == [
        "pipelines.a.type: expected 'ETL', 'ELT' or 'ETLT', got the text 'EL'"
    ]


def test_merge_is_required_with_more_than_one_extract_step() -> None:
    data = {"pipelines": {"orders": pipeline(extract={"steps": [step("a"), step("b")]})}}
    assert problems(data) == [
        "pipelines.orders.phases.extract: extract has 2 steps, so it needs a 'merge' step to combine them "
        "(for example join_merge)"
    ]
    data["pipelines"]["orders"]["phases"]["extract"]["merge"] = step("join")
    assert ProjectSpec.model_validate(data).pipelines["orders"].phases.extract.merge.plugin == "join"  # type: ignore[union-attr]


def test_merge_is_refused_with_one_extract_step() -> None:
    data = {"pipelines": {"a": pipeline(extract={"steps": [step("a")], "merge": step("m")})}}
    assert problems(data) == [
        "pipelines.a.phases.extract: 'merge' is only allowed when extract has more than one step"
    ]


@pytest.mark.parametrize("phase", ["extract", "load"])
def test_extract_and_load_need_at_least_one_step(phase: str) -> None:
    data = {"pipelines": {"a": pipeline(**{phase: {"steps": []}})}}
    assert problems(data) == [f"pipelines.a.phases.{phase}.steps: needs at least one step"]


def test_transform_at_load_needs_at_least_one_step() -> None:
    data = {"pipelines": {"a": pipeline("ELT", transform_at_load={"steps": []})}}
    assert problems(data) == ["pipelines.a.phases.transform_at_load.steps: needs at least one step"]


def test_step_ids_are_unique_within_a_phase() -> None:
    load = {"steps": [step("a", id="x")], "post": [step("b", id="x")]}
    assert problems({"pipelines": {"a": pipeline(load=load)}}) == [
        "pipelines.a.phases.load: step id 'x' is used twice in this phase; step ids must be unique"
    ]


def test_the_same_id_in_two_phases_is_fine() -> None:
    spec = ProjectSpec.model_validate(
        {"pipelines": {"a": pipeline(extract={"steps": [step(id="x")]}, load={"steps": [step(id="x")]})}}
    )
    assert spec.pipelines["a"].phases.load.steps[0].id == "x"  # type: ignore[union-attr]


def test_missing_ids_are_generated_from_the_plugin_and_avoid_given_ids() -> None:
    extract = {
        "pre": [step("hook")],
        "steps": [step("csv"), step("csv", id="csv_2"), step("csv")],
        "merge": step("join"),
    }
    spec = ProjectSpec.model_validate({"pipelines": {"a": pipeline(extract=extract)}})
    phase = spec.pipelines["a"].phases.extract
    assert phase is not None
    assert [s.id for s in phase.all_steps()] == ["hook", "csv", "csv_2", "csv_3", "join"]


def test_step_options_are_checked() -> None:
    bad = step(timeout=0, retries=-1, retry_backoff=-1)
    assert problems({"pipelines": {"a": pipeline(load={"steps": [bad]})}}) == [
        "pipelines.a.phases.load.steps[0].timeout: must be greater than 0",
        "pipelines.a.phases.load.steps[0].retries: must be at least 0",
        "pipelines.a.phases.load.steps[0].retry_backoff: must be at least 0",
    ]


def test_a_step_needs_a_plugin() -> None:
    assert problems({"pipelines": {"a": pipeline(load={"steps": [{"id": "x"}]})}}) == [
        "pipelines.a.phases.load.steps[0]: missing required key 'plugin'"
    ]
    assert problems({"pipelines": {"a": pipeline(load={"steps": [step("")]})}}) == [
        "pipelines.a.phases.load.steps[0].plugin: must not be empty"
    ]


def test_null_args_are_empty_args() -> None:
    assert StepSpec.model_validate({"plugin": "p", "args": None}).args == {}


def test_needs_accepts_a_name_or_a_list() -> None:
    spec = ProjectSpec.model_validate(
        {"pipelines": {"a": pipeline(), "b": pipeline(needs="a"), "c": pipeline(needs=["a", "b"])}}
    )
    assert [spec.pipelines[n].needs for n in "abc"] == [[], ["a"], ["a", "b"]]


def test_unknown_needs_name_the_pipelines() -> None:
    data = {"pipelines": {"a": pipeline(), "b": pipeline(needs=["a", "x", "y"])}}
    assert problems(data) == ["pipeline 'b' needs 'x', 'y', which is not a pipeline of this project"]


def test_cycles_name_the_pipelines() -> None:
    data = {
        "pipelines": {
            "a": pipeline(needs="c"),
            "b": pipeline(needs="a"),
            "c": pipeline(needs="b"),
            "d": pipeline(),
        }
    }
    assert problems(data) == ["pipelines depend on each other in a cycle: a -> c -> b -> a"]


def test_a_pipeline_needing_itself_is_a_cycle() -> None:
    assert problems({"pipelines": {"a": pipeline(needs="a")}}) == [
        "pipelines depend on each other in a cycle: a -> a"
    ]


def test_check_needs_names_the_offending_pipeline() -> None:
    assert check_needs({"a": [], "b": ["zz"]}) == (
        "b",
        "pipeline 'b' needs 'zz', which is not a pipeline of this project",
    )
    assert check_needs({"a": ["b"], "b": ["a"]}) == (
        "a",
        "pipelines depend on each other in a cycle: a -> b -> a",
    )
    assert check_needs({"a": [], "b": ["a"]}) is None


def test_find_cycle_on_a_diamond_is_none() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}) is None


def test_a_project_needs_pipelines_and_a_sane_concurrency() -> None:
    assert problems({"pipelines": {}}) == ["pipelines: needs at least one pipeline"]
    assert problems({"concurrency": 0, "pipelines": {"a": pipeline()}}) == ["concurrency: must be at least 1"]
    assert problems({"concurrency": "two", "pipelines": {"a": pipeline()}}) == [
        "concurrency: expected a whole number, got the text 'two'"
    ]


def test_unknown_keys_are_refused() -> None:
    data = {"pipelines": {"a": {**pipeline(), "descripton": "x"}}}
    assert problems(data) == ["pipelines.a: unknown key 'descripton'"]


def test_phase_lookup_by_name() -> None:
    spec = PipelineSpec.model_validate(pipeline("ELT"))
    assert spec.phase("transform_at_load") is spec.phases.transform_at_load
    assert spec.phase("transform") is None
