"""Argument forms rendered from each plugin's JSON schema, and the posted form read back into args."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.template.loader import render_to_string

from designer.editor.schema_forms import fields_for, parse_args
from orchestrator.plugins.base import PluginKind
from orchestrator.plugins.registry import registry

STEP_PLUGINS = [p.name for p in registry.all() if p.kind is not PluginKind.SECRET]


def render_form(plugin: str, args: dict | None = None, secret_names: list[str] | None = None) -> str:  # type: ignore[type-arg]
    schema = registry.describe(plugin)["args_schema"]
    return render_to_string(
        "editor/_field_list.html",
        {"fields": fields_for(schema, args or {}), "secret_names": secret_names or []},
    )


@pytest.mark.parametrize("plugin", STEP_PLUGINS)
def test_every_plugin_renders_a_form_with_every_argument(plugin):
    schema = registry.describe(plugin)["args_schema"]
    html = render_form(plugin)
    for name in schema.get("properties", {}):
        assert f'name="arg-{name}' in html, f"{plugin}: no input for {name}"


def test_the_builtin_catalogue_is_there():
    for name in [
        "csv_extract",
        "sql_extract",
        "join_merge",
        "filter_rows",
        "aggregate",
        "csv_load",
        "sql_load",
        "sql_execute",
    ]:
        assert name in STEP_PLUGINS


def widgets(plugin: str) -> dict[str, str]:
    return {f.name: f.widget for f in fields_for(registry.describe(plugin)["args_schema"])}


def test_widgets_follow_the_schema():
    assert widgets("csv_extract")["path"] == "text"
    assert widgets("csv_extract")["has_header"] == "checkbox"
    assert widgets("csv_extract")["columns"] == "list"
    assert widgets("filter_rows")["expr"] == "textarea"  # format: expression
    assert widgets("sql_execute")["sql"] == "textarea"  # format: sql
    assert widgets("join_merge")["how"] == "select"
    assert widgets("rename_columns")["mapping"] == "mapping"
    assert widgets("sql_extract")["batch_size"] == "number"


def test_secret_fields_offer_the_team_secrets():
    html = render_form("sql_extract", secret_names=["WAREHOUSE_DSN"])
    assert 'value="${{ secrets.WAREHOUSE_DSN }}"' in html


def test_enum_renders_options_with_the_current_value_selected():
    html = render_form("join_merge", {"on": "id", "how": "left"})
    assert '<option value="left" selected>' in html


def test_posted_values_become_typed_args_without_defaults():
    schema = registry.describe("csv_extract")["args_schema"]
    data = QueryDict(mutable=True)
    data.update(
        {
            "arg-path": " orders.csv ",
            "arg-delimiter": ",",
            "arg-has_header-present": "1",
            "arg-columns": "id\namount\n",
        }
    )
    args, errors = parse_args(schema, data)
    assert errors == {}
    assert args == {"path": "orders.csv", "has_header": False, "columns": ["id", "amount"]}


def test_mapping_rows_and_yaml_textareas():
    schema = registry.describe("rename_columns")["args_schema"]
    data = QueryDict(mutable=True)
    data.setlist("arg-mapping-key", ["a", "", "c"])
    data.setlist("arg-mapping-value", ["b", "", "d"])
    assert parse_args(schema, data) == ({"mapping": {"a": "b", "c": "d"}}, {})


def test_numbers_and_references():
    schema = registry.describe("sql_extract")["args_schema"]
    data = QueryDict(mutable=True)
    data.update({"arg-dsn": "${{ secrets.DB }}", "arg-table": "t", "arg-batch_size": "500"})
    args, _ = parse_args(schema, data)
    assert args == {"dsn": "${{ secrets.DB }}", "table": "t", "batch_size": 500}
