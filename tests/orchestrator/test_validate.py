"""validate_project: plugins exist, fit their slot, and accept their arguments; references are defined."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.plugins.registry import PluginRegistry
from orchestrator.spec import ProjectSpec
from orchestrator.validate import validate_project


def project(extract: dict[str, Any] | None = None, **phases: Any) -> dict[str, Any]:
    body = {
        "extract": extract or {"steps": [{"plugin": "read_rows", "args": {"path": "a.csv"}}]},
        "load": {"steps": [{"plugin": "write_rows", "args": {"table": "t"}}]},
        **phases,
    }
    return {"pipelines": {"p": {"type": "ETLT" if "transform_at_load" in body else "ETL", "phases": body}}}


def problems(data: dict[str, Any], registry: PluginRegistry) -> list[str]:
    return [str(p) for p in validate_project(ProjectSpec.model_validate(data), registry)]


def test_a_valid_project_has_no_problems(test_registry: PluginRegistry) -> None:
    extract = {
        "pre": [{"plugin": "before"}],
        "steps": [
            {"plugin": "read_rows", "args": {"path": "a"}},
            {"plugin": "read_rows", "args": {"path": "b"}},
        ],
        "merge": {"plugin": "join_rows", "args": {"on": "id"}},
        "post": [{"plugin": "after"}],
    }
    data = project(
        extract,
        transform={"steps": [{"plugin": "keep_rows"}]},
        transform_at_load={"steps": [{"plugin": "run_sql", "args": {"sql": "select 1"}}]},
    )
    assert problems(data, test_registry) == []


def test_unknown_plugins_suggest_close_names(test_registry: PluginRegistry) -> None:
    data = project({"steps": [{"plugin": "read_row", "args": {"path": "a"}}]})
    assert problems(data, test_registry) == [
        "pipelines.p.phases.extract.steps[0].plugin: unknown plugin 'read_row'; did you mean 'read_rows'?"
    ]
    data = project({"steps": [{"plugin": "zzz"}]})
    assert problems(data, test_registry) == [
        "pipelines.p.phases.extract.steps[0].plugin: unknown plugin 'zzz'; "
        "`python -m orchestrator plugins` lists the installed ones"
    ]


@pytest.mark.parametrize(
    ("extract", "phases", "message"),
    [
        (
            {"steps": [{"plugin": "write_rows", "args": {"table": "t"}}]},
            {},
            "pipelines.p.phases.extract.steps[0].plugin: plugin 'write_rows' is a load plugin; "
            "extract steps need an extract plugin",
        ),
        (
            {"steps": [{"plugin": "read_rows", "args": {"path": "a"}}] * 2, "merge": {"plugin": "keep_rows"}},
            {},
            "pipelines.p.phases.extract.merge.plugin: plugin 'keep_rows' is a transform plugin; "
            "the extract merge needs a merge plugin",
        ),
        (
            {"steps": [{"plugin": "read_rows", "args": {"path": "a"}}], "pre": [{"plugin": "after"}]},
            {},
            "pipelines.p.phases.extract.pre[0].plugin: plugin 'after' is a post plugin; "
            "extract pre steps need a pre plugin",
        ),
        (
            None,
            {"transform": {"steps": [{"plugin": "run_sql", "args": {"sql": "x"}}]}},
            "pipelines.p.phases.transform.steps[0].plugin: plugin 'run_sql' is a transform_at_load plugin; "
            "transform steps need a transform plugin",
        ),
        (
            None,
            {"transform_at_load": {"steps": [{"plugin": "keep_rows"}]}},
            "pipelines.p.phases.transform_at_load.steps[0].plugin: plugin 'keep_rows' is a transform plugin; "
            "transform_at_load steps need a transform_at_load plugin",
        ),
    ],
)
def test_a_plugin_must_fit_its_slot(
    test_registry: PluginRegistry, extract: dict[str, Any] | None, phases: dict[str, Any], message: str
) -> None:
    assert problems(project(extract, **phases), test_registry) == [message]


def test_load_pre_and_post_slots_are_checked(test_registry: PluginRegistry) -> None:
    data = project()
    data["pipelines"]["p"]["phases"]["load"]["post"] = [{"plugin": "before"}]
    assert problems(data, test_registry) == [
        "pipelines.p.phases.load.post[0].plugin: plugin 'before' is a pre plugin; "
        "load post steps need a post plugin"
    ]


def test_args_are_validated_against_the_plugin_args_model(test_registry: PluginRegistry) -> None:
    data = project({"steps": [{"plugin": "read_rows", "args": {"pth": "a", "limit": "many"}}]})
    assert problems(data, test_registry) == [
        "pipelines.p.phases.extract.steps[0].args: missing required argument 'path'",
        "pipelines.p.phases.extract.steps[0].args.limit: expected a whole number, got the text 'many'",
        "pipelines.p.phases.extract.steps[0].args: unknown argument 'pth'; did you mean 'path'?",
    ]


def test_variables_are_substituted_before_checking_args(test_registry: PluginRegistry) -> None:
    data = project(
        {
            "steps": [
                {"plugin": "read_rows", "args": {"path": "${{ variables.P }}", "limit": "${{ variables.N }}"}}
            ]
        }
    )
    assert problems({**data, "variables": {"P": "a.csv", "N": 5}}, test_registry) == []
    assert problems({**data, "variables": {"P": "a.csv", "N": "five"}}, test_registry) == [
        "pipelines.p.phases.extract.steps[0].args.limit: expected a whole number, got the text 'five'"
    ]


def test_args_holding_env_or_secret_references_are_not_type_checked(test_registry: PluginRegistry) -> None:
    args = {"path": "${{ secrets.S }}", "limit": "${{ env.LIMIT }}"}
    data = {
        **project({"steps": [{"plugin": "read_rows", "args": args}]}),
        "secrets": {"S": {"args": {"name": "S"}}},
    }
    assert problems(data, test_registry) == []
    args["limit"] = "x${{ variables.N }}"
    assert problems({**data, "variables": {"N": 5}}, test_registry) == [
        "pipelines.p.phases.extract.steps[0].args.limit: expected a whole number, got the text 'x5'"
    ]


def test_references_to_undefined_names_are_reported(test_registry: PluginRegistry) -> None:
    data = project(
        {"steps": [{"plugin": "read_rows", "args": {"path": "${{ variables.PATH }}/${{ secrets.KEY }}"}}]}
    )
    assert problems({**data, "variables": {"PATHS": 1}}, test_registry) == [
        "pipelines.p.phases.extract.steps[0].args.path: variable 'PATH' is not defined; "
        "did you mean 'PATHS'?",
        "pipelines.p.phases.extract.steps[0].args.path: secret 'KEY' is not declared; "
        "declare it in a 'secrets:' document before the project",
    ]


def test_secret_providers_are_checked_too(test_registry: PluginRegistry) -> None:
    data = {**project(), "secrets": {"A": {"args": {"nme": "X"}}, "B": {"plugin": "read_rows"}}}
    assert problems(data, test_registry) == [
        "secrets.A.args: missing required argument 'name'",
        "secrets.A.args: unknown argument 'nme'; did you mean 'name'?",
        "secrets.B.plugin: plugin 'read_rows' is an extract plugin; secrets need a secret plugin",
    ]
