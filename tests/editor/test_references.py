"""Pipelines that use the team's variables and secrets: validation, YAML tab, export and import."""

from __future__ import annotations

import copy

import pytest

from designer.editor import pipelines as service
from designer.editor.models import Pipeline
from designer.editor.projects import export_project, import_project
from designer.teams.secrets import set_secret
from designer.teams.variables import set_variable
from orchestrator.errors import SpecError
from orchestrator.plugins.registry import registry
from orchestrator.yamlio import load_project
from tests.factory import make_project

pytestmark = pytest.mark.django_db

SPEC = {
    "type": "ETL",
    "phases": {
        "extract": {
            "steps": [
                {"id": "read", "plugin": "sql_extract", "args": {"dsn": "${{ secrets.DB }}", "table": "t"}}
            ]
        },
        "load": {"steps": [{"id": "write", "plugin": "csv_load", "args": {"path": "${{ variables.OUT }}"}}]},
    },
}


@pytest.fixture
def pipeline(project, alice):  # type: ignore[no-untyped-def]
    pipeline = service.create_pipeline(project, "uses_refs", "ETL", alice)
    service.store(pipeline, copy.deepcopy(SPEC))
    return pipeline


def test_undefined_references_are_errors(pipeline):
    messages = [e["message"] for e in pipeline.errors]
    assert any("variable 'OUT' is not defined" in m for m in messages)
    assert any("secret 'DB' is not declared" in m for m in messages)


def test_team_variables_and_secrets_make_it_valid_and_export_stands_alone(pipeline, team, project):
    set_variable(team, None, "OUT", "out/x.csv")
    set_secret(team, "DB", "postgresql://u:p@h/db")
    service.store(pipeline, copy.deepcopy(pipeline.spec))
    assert pipeline.is_valid, pipeline.errors
    text = export_project(project)
    assert "postgresql://" not in text  # never the secret's value
    spec = load_project(text, registry=registry)
    assert spec.variables == {"OUT": "out/x.csv"}
    assert spec.secrets["DB"].args == {"name": "DB"}
    assert load_project(service.pipeline_yaml(pipeline), registry=registry).pipelines["uses_refs"]


def test_import_may_use_team_secrets_without_declaring_them(team, alice):
    set_secret(team, "DB", "sqlite:///x.db")
    project = make_project(team, "Other")
    text = (
        "variables:\n  OUT: out/y.csv\n---\npipelines:\n  p:\n    type: ETL\n    phases:\n      extract:\n"
        "        steps:\n          - {id: r, plugin: sql_extract, args: {dsn: '${{ secrets.DB }}', table: t}}"
        "\n"
        "      load:\n        steps:\n"
        "          - {id: w, plugin: csv_load, args: {path: '${{ variables.OUT }}'}}\n"
    )
    import_project(project, text, "p.yaml", alice)
    project.refresh_from_db()
    assert project.variables == {"OUT": "out/y.csv"} and project.secrets == {}
    assert Pipeline.objects.get(project=project, name="p").is_valid


def test_import_line_numbers_stay_right_when_team_names_are_used(team, alice):
    set_secret(team, "DB", "sqlite:///x.db")
    project = make_project(team, "Other")
    text = (
        "pipelines:\n  p:\n    type: ETL\n    phases:\n      extract:\n"
        "        steps:\n          - {id: r, plugin: sql_extract, args: {dsn: '${{ secrets.DB }}', table: t}}"
        "\n"
        "      load:\n        steps:\n          - {id: w, plugin: csv_lod}\n"
    )
    with pytest.raises(SpecError) as caught:
        import_project(project, text, "p.yaml", alice)
    (problem,) = caught.value.problems
    assert problem.line == 10 and "unknown plugin 'csv_lod'" in problem.message
    assert not project.pipelines.exists()


def test_yaml_tab_accepts_team_references(pipeline, team):
    set_variable(team, None, "OUT", "out/x.csv")
    set_secret(team, "DB", "sqlite:///x.db")
    text = service.pipeline_yaml(pipeline).replace("table: t", "table: t2")
    service.apply_yaml(
        pipeline, text.split("---\n")[-1]
    )  # only the project document: names come from the team
    assert pipeline.is_valid
    service.apply_yaml(pipeline, text)  # the whole file as the tab shows it: the team's names stay the team's
    assert pipeline.spec["phases"]["extract"]["steps"][0]["args"]["table"] == "t2"
    pipeline.project.refresh_from_db()
    assert pipeline.project.variables == {} and pipeline.project.secrets == {}
