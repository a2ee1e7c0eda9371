"""The editor's pure operations on a spec dict, and their validation by the engine."""

from __future__ import annotations

import pytest

from designer.editor import edits
from designer.editor.specs import validate_pipeline


def etl() -> dict:  # type: ignore[type-arg]
    spec = edits.new_spec("ETL")
    edits.add_step(spec, "extract", "steps", "csv_extract")
    edits.add_step(spec, "load", "steps", "csv_load")
    spec["phases"]["extract"]["steps"][0]["args"] = {"path": "a.csv"}
    spec["phases"]["load"]["steps"][0]["args"] = {"path": "out/a.csv"}
    return spec


def ids(spec: dict, phase: str, slot: str = "steps") -> list[str]:  # type: ignore[type-arg]
    return [s["id"] for s in edits.slot_steps(spec["phases"][phase], slot)]


def test_new_spec_has_the_required_phases():
    assert edits.new_spec("ELT")["phases"] == {
        "extract": {"steps": []},
        "load": {"steps": []},
        "transform_at_load": {"steps": []},
    }


def test_ids_are_unique_per_phase():
    spec = etl()
    edits.add_step(spec, "extract", "steps", "csv_extract", index=0)
    assert ids(spec, "extract") == ["csv_extract_2", "csv_extract"]
    edits.add_step(spec, "extract", "merge", "join_merge")
    edits.add_step(spec, "extract", "merge", "concat_merge")  # the merge slot holds one step
    assert ids(spec, "extract", "merge") == ["concat_merge"]


def test_wrong_kind_and_unknown_things_are_refused():
    spec = etl()
    with pytest.raises(edits.EditError, match="'filter_rows' is a transform plugin; the extract steps slot"):
        edits.add_step(spec, "extract", "steps", "filter_rows")
    with pytest.raises(edits.EditError, match="unknown plugin 'nope'"):
        edits.add_step(spec, "extract", "steps", "nope")
    with pytest.raises(edits.EditError, match="has no transform_at_load phase"):
        edits.add_step(spec, "transform_at_load", "steps", "sql_execute")
    with pytest.raises(edits.EditError, match="no step 'ghost' in load"):
        edits.remove_step(spec, "load", "ghost")


def test_move_reorders_and_renames_on_collision_across_phases():
    spec = edits.new_spec("ETL")
    for plugin in ["filter_rows", "sort_rows", "deduplicate"]:
        edits.add_step(spec, "transform", "steps", plugin)
    edits.move_step(spec, "transform", "deduplicate", "transform", "steps", 0)
    assert ids(spec, "transform") == ["deduplicate", "filter_rows", "sort_rows"]
    edits.move_step(spec, "transform", "deduplicate", "transform", "steps", 99)
    assert ids(spec, "transform") == ["filter_rows", "sort_rows", "deduplicate"]


def test_rename_a_step_keeps_ids_unique():
    spec = etl()
    edits.add_step(spec, "extract", "steps", "sql_extract")
    assert edits.set_step(spec, "extract", "sql_extract", {"table": "t"}, "customers") == "customers"
    with pytest.raises(edits.EditError, match="'csv_extract' is already used in extract"):
        edits.set_step(spec, "extract", "customers", {}, "csv_extract")
    with pytest.raises(edits.EditError, match="letters, digits"):
        edits.set_step(spec, "extract", "customers", {}, "bad id!")


def test_change_type_drops_and_adds_phases():
    spec = etl()
    edits.add_step(spec, "transform", "steps", "filter_rows")
    assert edits.steps_dropped_by_type(spec, "ETLT") == []
    assert edits.change_type(spec, "ELT") == ["transform.filter_rows"]
    assert set(spec["phases"]) == {"extract", "load", "transform_at_load"}
    with pytest.raises(edits.EditError, match="unknown pipeline type 'XYZ'"):
        edits.change_type(spec, "XYZ")


def test_tidy_drops_an_empty_optional_transform():
    spec = etl()
    spec["phases"]["transform"] = {"steps": []}
    assert "transform" not in edits.tidy(spec)["phases"]


def test_validation_is_the_engines():
    spec = etl()
    checked = validate_pipeline("p", spec)
    assert checked.is_valid, checked.errors
    edits.add_step(spec, "extract", "steps", "csv_extract")
    checked = validate_pipeline("p", spec)
    assert [e["path"] for e in checked.errors] == ["phases.extract", "phases.extract.steps[1].args"]
    edits.set_merge(spec, "join_merge")
    checked = validate_pipeline("p", spec)
    assert {e["message"] for e in checked.errors} == {
        "missing required argument 'path'",
        "missing required argument 'on'",
    }
    edits.set_merge(spec, None)
    assert spec["phases"]["extract"]["merge"] is None
