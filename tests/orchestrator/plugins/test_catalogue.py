"""The built-in catalogue: names and arguments users' YAML depends on; schemas the editor renders."""

from __future__ import annotations

import pytest

from orchestrator.plugins import PluginKind, registry
from orchestrator.plugins.registry import PluginRegistry

CATALOGUE = {
    "csv_extract": ("extract", {"path", "delimiter", "has_header", "columns"}),
    "parquet_extract": ("extract", {"path"}),
    "json_extract": ("extract", {"path", "lines"}),
    "sql_extract": ("extract", {"dsn", "query", "table", "columns"}),
    "http_extract": (
        "extract",
        {"url", "method", "headers", "params", "records_path", "pagination", "timeout", "retries"},
    ),
    "generate_rows": ("extract", {"rows", "columns", "seed"}),
    "join_merge": ("merge", {"on", "how"}),
    "concat_merge": ("merge", {"how"}),
    "select_columns": ("transform", {"columns"}),
    "drop_columns": ("transform", {"columns"}),
    "rename_columns": ("transform", {"mapping"}),
    "filter_rows": ("transform", {"expr"}),
    "with_columns": ("transform", {"columns"}),
    "cast_columns": ("transform", {"types"}),
    "aggregate": ("transform", {"by", "aggs"}),
    "sort_rows": ("transform", {"by", "descending"}),
    "deduplicate": ("transform", {"subset"}),
    "fill_null": ("transform", {"values"}),
    "sql_transform": ("transform", {"query"}),
    "csv_load": ("load", {"path"}),
    "parquet_load": ("load", {"path"}),
    "json_load": ("load", {"path"}),
    "sql_load": ("load", {"dsn", "table", "mode", "key"}),
    "http_load": ("load", {"url", "batch_size", "headers"}),
    "sql_execute": ("transform_at_load", {"dsn", "sql"}),
    "env_secret": ("secret", {"name"}),
}
BUILTIN_PREFIX = "orchestrator.plugins."


def builtins() -> list[str]:
    fresh = PluginRegistry()
    fresh.load()
    return sorted(p.name for p in fresh.all() if p.__module__.startswith(BUILTIN_PREFIX))


def test_the_catalogue_is_complete():
    assert builtins() == sorted(CATALOGUE)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_names_kinds_and_arguments_are_the_contract(name):
    kind, args = CATALOGUE[name]
    info = registry.describe(name)
    assert info["kind"] == PluginKind(kind).value
    assert args <= set(info["args_schema"]["properties"])


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_field_is_documented_for_the_editor(name):
    info = registry.describe(name)
    description = info["description"]
    assert description and "\n" not in description and len(description) <= 110
    schema = info["args_schema"]
    assert schema.get("additionalProperties") is False
    for field, prop in schema["properties"].items():
        assert prop.get("description"), f"{name}.{field} has no description"
        assert prop.get("examples"), f"{name}.{field} has no examples"


def test_sql_expression_and_secret_fields_are_marked():
    def prop(name, field):
        return registry.describe(name)["args_schema"]["properties"][field]

    for name, field in [("sql_extract", "query"), ("sql_execute", "sql"), ("sql_transform", "query")]:
        assert prop(name, field)["format"] == "sql"
    for name, field in [
        ("filter_rows", "expr"),
        ("with_columns", "columns"),
        ("aggregate", "aggs"),
        ("generate_rows", "columns"),
    ]:
        assert prop(name, field)["format"] == "expression"
    for name in ("sql_extract", "sql_load", "sql_execute"):
        assert prop(name, "dsn")["secret"] is True


def test_unknown_arguments_are_refused():
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        registry.get("filter_rows")({"expr": "a > 1", "exprs": "b"})
