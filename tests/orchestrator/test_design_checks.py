"""Design-time checks that equal run-time ones where no data is needed: SQL parsed by Polars' parser,
paths against the data root, columns a previous step is known to produce, and ``needs`` naming the
pipelines of the project a file is loaded into."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Definitions, RunPolicy, SpecError, dump_pipeline, load_project, pipeline_problems
from orchestrator.plugins.registry import registry

PARSING = RunPolicy(parse_sql=True)


def pipeline(*transform: dict[str, Any], extract_path: str = "in.csv", load_path: str = "out.csv") -> dict:  # type: ignore[type-arg]
    return {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "read", "plugin": "csv_extract", "args": {"path": extract_path}}]},
            "transform": {"steps": list(transform)},
            "load": {"steps": [{"id": "write", "plugin": "csv_load", "args": {"path": load_path}}]},
        },
    }


def step(step_id: str, plugin: str, **args: Any) -> dict[str, Any]:
    return {"id": step_id, "plugin": plugin, "args": args}


def problems(spec: dict, policy: RunPolicy = PARSING, **kw: Any) -> dict[str, str]:  # type: ignore[type-arg]
    _parsed, found = pipeline_problems("p", spec, registry, policy=policy, **kw)
    return {p.path: p.message for p in found}


def test_an_unfinished_expression_is_an_error_where_the_guard_alone_said_valid() -> None:
    spec = pipeline(step("f", "filter_rows", expr="amount >"))
    assert problems(spec, RunPolicy()) == {}  # the command line's quick validate: guard only
    found = problems(spec)
    assert found["phases.transform.steps[0].args.expr"].startswith("'amount >' is not a valid SQL expression")


@pytest.mark.parametrize(
    "transform",
    [
        step("f", "filter_rows", expr="amount > 10 AND country IN ('FR', 'DE')"),
        step(
            "a", "aggregate", by=["c"], aggs={"t": "sum(amount)", "m": "mean(x)", "n": "max", "k": "count(*)"}
        ),
        step("w", "with_columns", columns={"e": "amount * 0.92"}),
        step("q", "sql_transform", query="SELECT country, sum(amount) AS total FROM data GROUP BY country"),
    ],
)
def test_what_runs_parses(transform: dict[str, Any]) -> None:
    assert problems(pipeline(transform)) == {}


def test_a_broken_query_and_aggregate_name_their_field() -> None:
    found = problems(
        pipeline(
            step("q", "sql_transform", query="SELECT * FROM data WHERE"),
            step("a", "aggregate", aggs={"t": "sum(amount"}),
        )
    )
    assert found["phases.transform.steps[0].args.query"].startswith("the query is not valid SQL")
    assert "phases.transform.steps[1].args.aggs.t" in found


def test_paths_are_checked_against_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "team"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    policy = RunPolicy(data_root=str(root), parse_sql=True)
    found = problems(pipeline(extract_path="/etc/passwd", load_path="escape/x.csv"), policy)
    assert (
        "absolute path '/etc/passwd' is outside the data root" in found["phases.extract.steps[0].args.path"]
    )
    assert "through a symbolic link" in found["phases.load.steps[0].args.path"]
    assert str(tmp_path) not in "".join(found.values())  # the server's folders are not shown
    assert problems(pipeline(extract_path=str(root / "in.csv")), policy) == {}
    assert (
        "contains '..'"
        in problems(pipeline(extract_path="../../etc/passwd"))["phases.extract.steps[0].args.path"]
    )


def test_columns_are_checked_once_the_previous_steps_schema_is_known() -> None:
    spec = pipeline(
        step("f", "filter_rows", expr="amont > 1"),
        step("q", "sql_transform", query="SELECT countri FROM data"),
        step("w", "with_columns", columns={"e": "amount * 2", "g": "e + 1", "h": "nope"}),
    )
    assert problems(spec) == {}  # nothing known yet: not checked
    found = problems(
        spec, columns={"read": ["amount", "country"], "f": ["amount", "country"], "q": ["amount"]}
    )
    assert found == {
        "phases.transform.steps[0].args.expr": (
            "column 'amont' is not produced by the previous step 'read' (its columns: amount, country)"
        ),
        "phases.transform.steps[1].args.query": (
            "column 'countri' is not produced by the previous step 'f' (its columns: amount, country)"
        ),
        "phases.transform.steps[2].args.columns.h": (
            "column 'nope' is not produced by the previous step 'q' (its columns: amount)"
        ),
    }


def test_arguments_naming_columns_are_checked_too() -> None:
    spec = pipeline(
        step("keep", "select_columns", columns=["id", "gone"]),
        step("names", "rename_columns", mapping={"id": "key", "old": "new"}),
        step("order", "sort_rows", by="key"),
    )
    found = problems(spec, columns={"read": ["id", "amount"], "keep": ["id"], "names": ["key"]})
    assert found == {
        "phases.transform.steps[0].args.columns[1]": (
            "column 'gone' is not produced by the previous step 'read' (its columns: id, amount)"
        ),
        "phases.transform.steps[1].args.mapping.old": (
            "column 'old' is not produced by the previous step 'keep' (its columns: id)"
        ),
    }
    joined = {
        "type": "ETL",
        "phases": {
            "extract": {
                "steps": [step("a", "csv_extract", path="a.csv"), step("b", "csv_extract", path="b.csv")],
                "merge": step("join", "join_merge", on=["id", "day"]),
            },
            "load": {"steps": [step("write", "csv_load", path="out.csv")]},
        },
    }
    assert problems(joined, columns={"a": ["id", "day"], "b": ["id"]}) == {
        "phases.extract.merge.args.on[1]": (
            "column 'day' is not produced by the previous step 'a, b' (its columns: id)"
        )
    }


NEEDS_OUTSIDE = """\
pipelines:
  b:
    type: ETL
    needs: [a]
    phases:
      extract: {steps: [{id: w, plugin: sleep_extract}]}
      load: {steps: [{id: s, plugin: sleep_load}]}
"""


def test_a_files_needs_may_name_the_projects_other_pipelines() -> None:
    with pytest.raises(SpecError, match="needs 'a', which is not a pipeline of this project"):
        load_project(NEEDS_OUTSIDE, registry=registry)
    spec = load_project(NEEDS_OUTSIDE, registry=registry, context=Definitions(pipelines={"a": []}))
    assert spec.pipelines["b"].needs == ["a"]
    with pytest.raises(SpecError, match="cycle: b -> a -> b|cycle: a -> b -> a"):
        load_project(NEEDS_OUTSIDE, registry=registry, context=Definitions(pipelines={"a": ["b"]}))


def test_a_single_pipeline_dump_keeps_its_needs_when_asked() -> None:
    spec = load_project(NEEDS_OUTSIDE, registry=registry, context=Definitions(pipelines={"a": []}))
    assert "needs" not in dump_pipeline(spec, "b")
    text = dump_pipeline(spec, "b", keep_needs=True)
    assert "needs:\n      - a\n" in text
    again = load_project(text, registry=registry, context=Definitions(pipelines={"a": []}))
    assert again.pipelines["b"] == spec.pipelines["b"] == copy.deepcopy(spec.pipelines["b"])
