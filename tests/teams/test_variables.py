"""Variables: team-wide and per project (project wins), the file's document, run overrides on top."""

from __future__ import annotations

import pytest

from designer.teams import variables
from designer.teams.models import Variable

HX = {"HTTP_HX_REQUEST": "true"}


def test_precedence_team_then_file_then_project_then_run(crew):
    project = crew.project
    variables.set_variable(crew.team, None, "A", "team")
    variables.set_variable(crew.team, None, "B", "team")
    variables.set_variable(crew.team, None, "C", "team")
    variables.set_variable(crew.team, None, "D", "team")
    project.variables = {"B": "file", "C": "file", "D": "file"}
    project.save()
    variables.set_variable(crew.team, project, "C", "project")
    variables.set_variable(crew.team, project, "D", "project")
    merged = variables.effective_variables(project, {"D": "run"})
    assert merged == {"A": "team", "B": "file", "C": "project", "D": "run"}
    assert [(n, src) for n, _, src in variables.variable_sources(project)] == [
        ("A", "team"),
        ("B", "project file"),
        ("C", "project"),
        ("D", "project"),
    ]


def test_another_teams_variables_never_leak_in(crew):
    variables.set_variable(crew.other_team, None, "X", "rival")
    assert variables.effective_variables(crew.project) == {}
    with pytest.raises(ValueError, match="another team"):
        variables.set_variable(crew.team, crew.other_project, "X", 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("true", True),
        ('["a", 1]', ["a", 1]),
        ("orders.csv", "orders.csv"),
        ('"42"', "42"),
        ("007", "007"),
    ],
)
def test_form_values_are_json_when_they_parse_and_round_trip(text, value):
    assert variables.parse_value(text) == value
    assert variables.parse_value(variables.format_value(value)) == value


def test_editors_set_and_delete_team_variables_viewers_cannot(crew):
    editor = crew.client("editor")
    response = editor.post("/t/acme/variables/", {"name": "ORDERS", "value": "orders.csv"}, **HX)
    assert b"Variable ORDERS saved." in response.content
    assert (
        crew.client("runner").post("/t/acme/variables/", {"name": "ORDERS", "value": "x"}).status_code == 404
    )
    assert Variable.objects.get(name="ORDERS").value == "orders.csv"
    response = editor.post("/t/acme/variables/", {"name": "2bad", "value": "x"}, **HX)
    assert b"Variable &#x27;2bad&#x27; was not saved" in response.content
    assert editor.post("/t/acme/variables/ORDERS/delete/", **HX).status_code == 200
    assert not Variable.objects.exists()


def test_the_project_variables_page_shows_where_each_value_comes_from(crew):
    variables.set_variable(crew.team, None, "LIMIT", 10)
    client = crew.client("editor")
    response = client.post("/p/acme/sales/-/variables/", {"name": "LIMIT", "value": "20"}, **HX)
    assert b"Variable LIMIT saved for Sales." in response.content
    page = crew.client("viewer").get("/p/acme/sales/-/variables/").content.decode()
    assert "<code>20</code>" in page and "Set variable" not in page
    assert variables.effective_variables(crew.project)["LIMIT"] == 20
    client.post("/p/acme/sales/-/variables/LIMIT/delete/", **HX)
    assert variables.effective_variables(crew.project)["LIMIT"] == 10
