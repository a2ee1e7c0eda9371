"""Secrets only where a plugin declares them, and masked in every form they may leak in."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from orchestrator.plugins.registry import registry
from orchestrator.resolve import Redactor, ResolveError, resolve_args
from orchestrator.spec import ProjectSpec
from orchestrator.validate import validate_project

SECRET = "hunter2-zq81Xw/pLm+77kk é"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        "hunter2",
        "zq81Xw",
        "77kk",
    ],
)
def test_every_form_of_a_secret_is_masked(form: str) -> None:
    redactor = Redactor([SECRET])
    assert redactor(f"column '{form}' not found") == "column '***' not found"


def test_short_fragments_and_other_text_are_left_alone() -> None:
    redactor = Redactor([SECRET])
    assert redactor("pLm is short, so is é; keep them") == "pLm is short, so is é; keep them"
    assert redactor.redact_value({"a": [f"x{SECRET}y", 3]}) == {"a": ["x***y", 3]}


def _spec(step: dict[str, object]) -> ProjectSpec:
    return ProjectSpec.model_validate(
        {
            "variables": {"TOKEN": "${{ secrets.API }}"},
            "secrets": {"API": {"plugin": "env_secret", "args": {"name": "API"}}},
            "pipelines": {
                "p": {
                    "type": "ETL",
                    "phases": {
                        "extract": {"steps": [step]},
                        "load": {"steps": [{"id": "o", "plugin": "csv_load", "args": {"path": "o.csv"}}]},
                    },
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (
            {"plugin": "generate_rows", "args": {"rows": 1, "columns": {"s": "'${{ secrets.API }}'"}}},
            "columns",
        ),
        ({"plugin": "csv_extract", "args": {"path": "${{ secrets.API }}.csv"}}, "path"),
        ({"plugin": "csv_extract", "args": {"path": "${{ variables.TOKEN }}"}}, "path"),
        ({"plugin": "http_extract", "args": {"url": "https://x.test/?k=${{ secrets.API }}"}}, "url"),
        (
            {"plugin": "sql_extract", "args": {"dsn": "sqlite:///a.db", "query": "${{ secrets.API }}"}},
            "query",
        ),
    ],
)
def test_validation_refuses_a_secret_outside_secret_fields(step: dict[str, object], field: str) -> None:
    problems = validate_project(_spec({"id": "s", **step}), registry)
    messages = [f"{p.path}: {p.message}" for p in problems]
    plugin = step["plugin"]
    assert any(
        m.startswith(
            f"pipelines.p.phases.extract.steps[0].args.{field}: field '{field}' of plugin '{plugin}'"
        )
        and "does not accept secrets" in m
        for m in messages
    ), messages


@pytest.mark.parametrize(
    "step",
    [
        {"plugin": "sql_extract", "args": {"dsn": "${{ secrets.API }}", "table": "t"}},
        {
            "plugin": "http_extract",
            "args": {"url": "https://x.test", "headers": {"A": "B ${{ secrets.API }}"}},
        },
        {
            "plugin": "http_extract",
            "args": {"url": "https://x.test", "params": {"key": "${{ variables.TOKEN }}"}},
        },
    ],
)
def test_secret_fields_accept_secrets(step: dict[str, object]) -> None:
    assert validate_project(_spec({"id": "s", **step}), registry) == []


def test_the_run_refuses_a_secret_outside_secret_fields_too() -> None:
    def secrets(name: str, key: str | None) -> str:
        return SECRET

    args = {"dsn": "${{ secrets.API }}", "query": "SELECT '${{ variables.TOKEN }}'"}
    with pytest.raises(ResolveError, match="field 'query' of plugin 'sql_extract' does not accept secrets"):
        resolve_args(
            args,
            secret_fields={"dsn"},
            plugin="sql_extract",
            variables={"TOKEN": "${{ secrets.API }}"},
            env={},
            secrets=secrets,
        )
    resolved = resolve_args(
        {"dsn": "${{ secrets.API }}"},
        secret_fields={"dsn"},
        plugin="x",
        variables={},
        env={},
        secrets=secrets,
    )
    assert resolved == {"dsn": SECRET}
