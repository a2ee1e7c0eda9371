"""Argument forms rendered from a plugin's JSON schema (one generic template, never per-plugin HTML).

``fields_for(schema, args)`` describes each field for ``templates/editor/_step_form.html``;
``parse_args(schema, data)`` turns the posted form back into the step's ``args`` dict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

REFERENCE = "${{"
TEXTAREA_FORMATS = {"sql", "expression", "code", "template"}
SECRET_NAMES = {"dsn", "password", "token", "api_key", "apikey", "secret", "auth"}


@dataclass
class SchemaField:
    """One argument as the form shows it."""

    name: str
    widget: str  # text | number | checkbox | select | textarea | list | mapping | yaml
    label: str
    required: bool
    description: str = ""
    value: str = ""
    checked: bool = False
    choices: list[str] = field(default_factory=list)
    placeholder: str = ""
    secret: bool = False
    format: str = ""
    errors: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)  # mapping key/value rows
    #: the columns of the step's input, offered for a field that names them or uses them in SQL
    columns: list[str] = field(default_factory=list)
    #: how they are offered: "names" (a name or a list), "keys" (a mapping's keys), "expression" (SQL)
    column_kind: str = ""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/X``)."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {})
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(schema, merged)
    return node


def _effective(schema: dict[str, Any], prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The property's schema with ``X | None`` unwrapped; the flag says whether null is allowed."""
    prop = _resolve(schema, prop)
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        options = [_resolve(schema, o) for o in options]
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        if len(non_null) == 1:
            extra = {k: v for k, v in prop.items() if k not in {"anyOf", "oneOf"}}
            return {**non_null[0], **extra}, nullable
        return {**prop, "x-union": non_null}, nullable
    return prop, False


def _widget(prop: dict[str, Any], name: str) -> str:
    kind = prop.get("type")
    if "enum" in prop or "const" in prop:
        return "select"
    if "x-union" in prop:
        return "yaml"
    if kind == "boolean":
        return "checkbox"
    if kind in {"integer", "number"}:
        return "number"
    if kind == "array":
        items = prop.get("items") or {}
        return (
            "list"
            if items.get("type") in {"string", "integer", "number", None} and "$ref" not in items
            else "yaml"
        )
    if kind == "object":
        values = prop.get("additionalProperties")
        if not prop.get("properties") and (values is None or values is True or isinstance(values, dict)):
            simple = not isinstance(values, dict) or values.get("type") in {
                "string",
                "integer",
                "number",
                None,
            }
            return "mapping" if simple else "yaml"
        return "yaml"
    if kind == "string":
        fmt = prop.get("format", "")
        if fmt in TEXTAREA_FORMATS or prop.get("x-multiline"):
            return "textarea"
        return "text"
    return "yaml"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()
    return str(value)


def is_secret(prop: dict[str, Any], name: str) -> bool:
    """A field that should hold a ``${{ secrets.X }}`` reference rather than a literal value."""
    return bool(
        prop.get("secret")
        or prop.get("x-secret")
        or prop.get("writeOnly")
        or prop.get("format") == "password"
        or name.lower() in SECRET_NAMES
    )


def column_kind(prop: dict[str, Any]) -> str:
    """How a field uses the input's columns (the plugin's ``Args`` say it): names them, as a mapping's
    keys, or in SQL; "" when it does not."""
    marked = prop.get("input_columns")
    if marked in ("names", "keys"):
        return str(marked)
    if prop.get("format") == "expression" or (
        prop.get("format") == "sql" and prop.get("dialect") == "polars"
    ):
        return "expression"
    return ""


def fields_for(
    schema: dict[str, Any],
    args: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    columns: Iterable[str] = (),
) -> list[SchemaField]:
    """Describe every argument of ``schema`` with its current value (from ``args`` or the default);
    ``columns``: the step's input columns, once known, offered where a field uses them."""
    columns = list(columns)
    args = args or {}
    errors = errors or {}
    required = set(schema.get("required") or [])
    out = []
    for name, raw in (schema.get("properties") or {}).items():
        prop, _nullable = _effective(schema, raw)
        widget = _widget(prop, name)
        present = name in args
        value = args.get(name, prop.get("default"))
        f = SchemaField(
            name=name,
            widget=widget,
            label=prop.get("title") or name.replace("_", " ").capitalize(),
            required=name in required,
            description=prop.get("description", ""),
            secret=is_secret(prop, name),
            format=str(prop.get("format", "")),
            errors=errors.get(name, []),
        )
        if columns and (kind := column_kind({**raw, **prop})):
            f.columns, f.column_kind = columns, kind
        examples = prop.get("examples") or []
        if examples and not isinstance(examples[0], (dict, list, bool)):
            f.placeholder = f"e.g. {examples[0]}"
        if widget == "checkbox":
            f.checked = bool(value) if not isinstance(value, str) else False
            if isinstance(value, str):  # a reference: fall back to text
                f.widget, f.value = "text", value
        elif widget == "select":
            f.choices = [str(c) for c in prop.get("enum", [prop.get("const")])]
            f.value = _text(value)
            if f.value and f.value not in f.choices:
                f.choices.append(f.value)
        elif widget == "list":
            f.value = "\n".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
        elif widget == "mapping":
            if isinstance(value, dict):
                f.rows = [(str(k), _text(v)) for k, v in value.items()]
            f.value = _text(value) if present or value else ""
        else:
            f.value = _text(value)
        out.append(f)
    return out


def _number(text: str, integer: bool) -> Any:
    try:
        return int(text) if integer else (int(text) if text.lstrip("-").isdigit() else float(text))
    except ValueError:
        return text  # keep it: the engine's validation names the problem next to the field


def parse_args(
    schema: dict[str, Any], data: Any, previous: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Posted form data (a QueryDict) -> (args, errors per field that could not even be read)."""
    args: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    required = set(schema.get("required") or [])
    for name, raw in (schema.get("properties") or {}).items():
        prop, _nullable = _effective(schema, raw)
        widget = _widget(prop, name)
        key = f"arg-{name}"
        default = prop.get("default")
        if widget == "checkbox" and f"{key}-present" in data and key not in data:
            value: Any = False
        elif widget == "mapping" and f"{key}-key" in data:
            keys, values = data.getlist(f"{key}-key"), data.getlist(f"{key}-value")
            value = {k.strip(): _scalar(v) for k, v in zip(keys, values, strict=False) if k.strip()}
            if not value and name not in required:
                continue
        else:
            if key not in data:
                continue
            text = data.get(key, "")
            if widget == "checkbox":
                value = text in {"on", "true", "1"} or (text if REFERENCE in text else False)
            elif text.strip() == "":
                if name in required and default is None:
                    continue  # missing: the engine reports it next to the field
                continue
            elif REFERENCE in text and widget not in {"yaml", "mapping", "list"}:
                value = text.strip()
            elif widget == "number":
                value = _number(text.strip(), prop.get("type") == "integer")
            elif widget == "list":
                item_type = (prop.get("items") or {}).get("type")
                items = [line.strip() for line in text.splitlines() if line.strip()]
                value = [
                    _number(i, item_type == "integer") if item_type in {"integer", "number"} else i
                    for i in items
                ]
            elif widget in {"yaml", "mapping"}:
                try:
                    value = _load(text)
                except ValueError as exc:
                    errors.setdefault(name, []).append(str(exc))
                    if previous and name in previous:
                        args[name] = previous[name]
                    continue
            elif widget == "select" and prop.get("type") in {"integer", "number"}:
                value = _number(text, prop.get("type") == "integer")
            else:
                value = text if widget == "textarea" else text.strip()
        if value == default and name not in required:
            continue
        args[name] = value
    return args, errors


def _scalar(text: str) -> Any:
    text = text.strip()
    if REFERENCE in text:
        return text
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) or value is None else text


def _load(text: str) -> Any:
    """YAML (or JSON, a subset) from a textarea; ValueError with the line on a syntax error."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


def errors_by_field(
    step_errors: list[dict[str, Any]], field_names: Iterable[str] = ()
) -> tuple[dict[str, list[str]], list[str]]:
    """Split a step's problems into per-argument messages and the rest (``args.path`` -> ``path``).

    "missing required argument 'x'" is reported on the args mapping: it goes next to field ``x`` when the
    form has one (``field_names``), else to the general messages.
    """
    names = set(field_names)
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for error in step_errors:
        rest = error.get("rest", "")
        name = ""
        if rest.startswith("args."):
            name = rest[5:].split(".")[0].split("[")[0]
        elif rest == "args" and "'" in error["message"]:
            name = error["message"].split("'")[1]
        if name and (name in names or rest != "args"):
            by_field.setdefault(name, []).append(error["message"])
        else:
            general.append(error["message"])
    return by_field, general
