"""Typed run parameters: the engine's checks, ``${{ run.X }}``, the CLI's ``--var`` and the Run form."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from designer.runs.models import Run
from designer.triggers import parameters
from designer.triggers.models import RunParameter
from orchestrator import (
    ParameterError,
    ProjectSpec,
    check_values,
    load_parameters,
    make_parameter,
    run_project_sync,
)
from orchestrator.resolve import ResolveError, resolve_value
from orchestrator.validate import reference_problems

ROOT = Path(__file__).resolve().parents[2]

DECLARED = load_parameters(
    [
        {"name": "day", "type": "date", "required": True},
        {"name": "at", "type": "datetime"},
        {"name": "limit", "type": "integer", "default": 10},
        {"name": "ratio", "type": "number", "default": 0.5},
        {"name": "dry", "type": "boolean", "default": False},
        {"name": "region", "type": "choice", "choices": ["eu", "us"], "default": "eu"},
        {"name": "label", "type": "string", "description": "free text"},
    ]
)


def test_values_given_as_text_or_json_come_out_typed_with_defaults_filled_in() -> None:
    typed = check_values(DECLARED, {"day": "2026-11-01", "limit": "25", "ratio": "2", "dry": "yes"})
    assert typed == {"day": "2026-11-01", "limit": 25, "ratio": 2, "dry": True, "region": "eu"}
    typed = check_values(
        DECLARED, {"day": dt.date(2026, 11, 2), "limit": 3.0, "at": "2026-11-01T02:00+01:00"}
    )
    assert typed["day"] == "2026-11-02" and typed["limit"] == 3 and typed["at"] == "2026-11-01T02:00:00+01:00"
    assert check_values(DECLARED, {"day": "2026-11-01", "other": "kept"})["other"] == "kept"


def test_every_problem_is_reported_at_once_by_name() -> None:
    with pytest.raises(ParameterError) as info:
        check_values(
            DECLARED, {"limit": "ten", "dry": "maybe", "region": "mars", "at": "tuesday", "ratio": "nan"}
        )
    assert info.value.problems == {
        "day": "required: give a value",
        "at": "expected a date and time like 2026-11-01T02:00:00+01:00, got 'tuesday'",
        "limit": "expected a whole number, got 'ten'",
        "ratio": "expected a finite number, got 'nan'",
        "dry": "expected true or false, got 'maybe'",
        "region": "expected one of eu, us, got 'mars'",
    }
    with pytest.raises(ParameterError, match="expected a date like 2026-11-01"):
        check_values(DECLARED, {"day": "2026-13-01"})
    with pytest.raises(ParameterError, match="whole number"):
        check_values(DECLARED, {"day": "2026-11-01", "limit": True})


def test_a_declaration_is_checked_too() -> None:
    with pytest.raises(ParameterError, match="default: expected a whole number"):
        make_parameter("n", "integer", default="many")
    with pytest.raises(ParameterError, match="needs at least one choice"):
        make_parameter("c", "choice")
    with pytest.raises(ParameterError, match="unknown type 'float'"):
        make_parameter("x", "float")
    with pytest.raises(ParameterError, match="declared twice"):
        load_parameters([{"name": "a"}, {"name": "a", "type": "integer"}])
    assert [p.name for p in load_parameters({"a": {"type": "integer"}, "b": None or {}})] == ["a", "b"]


def test_run_references_resolve_from_the_run_context_and_are_checked_by_name() -> None:
    context = {"@run": {"date": "2026-11-01", "datetime": "2026-11-01T02:00:00+01:00", "id": "42"}}
    value = resolve_value("out/${{ run.date }}-${{ run.id }}.csv", variables=context, env={}, secrets=None)
    assert value == "out/2026-11-01-42.csv"
    with pytest.raises(ResolveError, match="run was started without a run context"):
        resolve_value("${{ run.date }}", variables={}, env={}, secrets=None)
    problems = reference_problems({"path": "${{ run.day }}"}, {}, {})
    assert problems[0].message.endswith("a run has run.date, run.datetime, run.id")


def test_every_pipeline_run_by_the_engine_has_a_run_date(tmp_path: Path) -> None:
    spec = ProjectSpec.model_validate(
        {
            "pipelines": {
                "p": {
                    "type": "ETL",
                    "phases": {
                        "extract": {"steps": [{"plugin": "sleep_extract", "args": {"seconds": 0}}]},
                        "load": {
                            "steps": [{"plugin": "csv_load", "args": {"path": "d-${{ run.date }}.csv"}}]
                        },
                    },
                }
            }
        }
    )
    result = run_project_sync(spec, data_root=tmp_path)
    assert result.status == "succeeded"
    assert [f.name for f in tmp_path.iterdir()] == [f"d-{dt.date.today().isoformat()}.csv"]


CLI_PROJECT = """\
pipelines:
  p:
    type: ETL
    phases:
      extract:
        steps: [{plugin: sleep_extract, args: {seconds: 0, rows: "${{ variables.limit }}"}}]
      load:
        steps: [{plugin: csv_load, args: {path: "out-${{ run.date }}-${{ variables.day }}.csv"}}]
"""
CLI_PARAMS = """\
- {name: day, type: date, required: true}
- {name: limit, type: integer, default: 2}
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "project.yaml").write_text(CLI_PROJECT)
    (tmp_path / "params.yaml").write_text(CLI_PARAMS)
    command = [sys.executable, "-m", "orchestrator", "run", "project.yaml", "--params", "params.yaml", *args]
    return subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin", "PIPEDECK_DATA_ROOT": str(tmp_path)},
    )


def test_the_cli_types_var_values_by_the_declared_parameters(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--var", "day=2026-11-03", "--var", "limit=4", "--date", "2026-11-04")
    assert done.returncode == 0, done.stderr
    written = tmp_path / "out-2026-11-04-2026-11-03.csv"
    assert written.read_text().splitlines() == ["x", "0", "1", "2", "3"]


def test_the_cli_refuses_var_values_that_do_not_fit(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--var", "day=tomorrow", "--var", "limit=many")
    assert done.returncode == 2
    assert "day: expected a date like 2026-11-01, got 'tomorrow'" in done.stderr
    assert "limit: expected a whole number, got 'many'" in done.stderr
    done = _cli(tmp_path)
    assert done.returncode == 2 and "day: required: give a value" in done.stderr


# ---- the designer ----------------------------------------------------------------------------------------


def test_a_declaration_is_stored_typed_and_read_back_as_the_engines(param_project) -> None:  # type: ignore[no-untyped-def]
    row = RunParameter.objects.get(project=param_project, name="limit")
    assert (row.type, row.default, row.required) == ("integer", 10, False)
    assert [p.name for p in parameters.declared(param_project)] == ["day", "limit"]
    with pytest.raises(ParameterError):
        parameters.set_parameter(param_project, "when", "date", default="soon")


def test_the_run_form_is_generated_from_the_declaration(alice_client, param_project) -> None:  # type: ignore[no-untyped-def]
    page = alice_client.get("/p/acme/sales/-/run-with/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="arg-day"' in html and "The business day" in html and 'placeholder="e.g. 2026-11-01"' in html
    assert 'name="arg-limit"' in html and 'value="10"' in html


def test_the_run_form_refuses_bad_values_next_to_their_field(alice_client, param_project) -> None:  # type: ignore[no-untyped-def]
    page = alice_client.post("/p/acme/sales/-/run-with/", {"arg-day": "someday", "arg-limit": "3"})
    assert page.status_code == 400
    html = page.content.decode()
    assert "expected a date like 2026-11-01, got &#x27;someday&#x27;" in html
    assert not Run.objects.exists()
    page = alice_client.post("/p/acme/sales/-/run-with/", {"arg-limit": "3"})
    assert page.status_code == 400 and "required: give a value" in page.content.decode()


def test_the_run_form_starts_a_run_with_typed_values(alice_client, param_project) -> None:  # type: ignore[no-untyped-def]
    response = alice_client.post("/p/acme/sales/-/run-with/", {"arg-day": "2026-11-01", "arg-limit": "3"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.variables == {"day": "2026-11-01", "limit": 3}
    assert run.spec["variables"]["limit"] == 3 and run.trigger == ""


def test_run_time_values_stay_literal_in_the_run_form(alice_client, project) -> None:  # type: ignore[no-untyped-def]
    from tests.factory import make_pipeline

    make_pipeline(project, "orders")
    parameters.set_parameter(project, "label", "string")
    page = alice_client.post("/p/acme/sales/-/run-with/", {"arg-label": "${{ secrets.TOKEN }}"})
    assert page.status_code == 400 and "values given when starting a run are literal" in page.content.decode()
    assert not Run.objects.exists()


def test_editors_declare_parameters_on_the_triggers_page(alice_client, project) -> None:  # type: ignore[no-untyped-def]
    response = alice_client.post(
        "/p/acme/sales/-/triggers/parameters/",
        {"name": "region", "type": "choice", "choices": "eu, us", "default": "eu", "description": "where"},
    )
    assert response.status_code == 302
    assert parameters.declared(project)[0].choices == ("eu", "us")
    bad = alice_client.post(
        "/p/acme/sales/-/triggers/parameters/", {"name": "n", "type": "integer", "default": "x"}
    )
    assert bad.status_code == 400 and "default: expected a whole number" in bad.content.decode()
    page = alice_client.get("/p/acme/sales/-/triggers/")
    assert 'data-parameter="region"' in page.content.decode()
    assert alice_client.post("/p/acme/sales/-/triggers/parameters/region/delete/").status_code == 302
    assert parameters.declared(project) == []


def test_the_quick_run_button_checks_its_overrides_against_the_parameters_too(
    alice_client, param_project
) -> None:  # type: ignore[no-untyped-def]
    refused = alice_client.post("/p/acme/sales/-/run/", {"variables": "limit=many"}, HTTP_HX_REQUEST="true")
    html = refused.content.decode()
    assert "day: required: give a value" in html and "limit: expected a whole number" in html
    assert not Run.objects.exists()
    alice_client.post("/p/acme/sales/-/run/", {"variables": "day=2026-11-02\nlimit=5"})
    assert Run.objects.get().variables == {"day": "2026-11-02", "limit": 5}
