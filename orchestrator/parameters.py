"""Typed run parameters: what a project declares it takes when a run starts, and the checks every way of
starting one (the Run form, schedules, webhooks, ``--var``) applies to the values given.

A declaration is a list of ``Parameter`` (name, type, default, description, required, choices). Values come
as text (a form, the command line) or as JSON (a schedule, a webhook body): ``check_values`` turns them into
typed values (dates and datetimes as ISO text) or raises ``ParameterError`` listing every problem.

Every run also has ``${{ run.date }}``, ``${{ run.datetime }}`` and ``${{ run.id }}``: ``run_context`` makes
them, stored in the run's variables under ``RUN_CONTEXT`` (a key no variable name can take).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: the variables key holding ``run.date`` / ``run.datetime`` / ``run.id`` (not an identifier: no clash)
RUN_CONTEXT = "@run"
#: what ``${{ run.X }}`` may name
RUN_FIELDS = ("date", "datetime", "id")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"


class ParameterError(ValueError):
    """Values (or a declaration) that do not fit: ``problems`` maps a parameter name to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {why}" for name, why in self.problems.items()))


@dataclass(frozen=True)
class Parameter:
    """One declared run parameter."""

    name: str
    type: ParamType = ParamType.STRING
    default: Any = None
    description: str = ""
    required: bool = False
    #: the allowed values of a ``choice`` parameter (text)
    choices: tuple[str, ...] = field(default_factory=tuple)

    def coerce(self, value: Any) -> Any:
        """``value`` (text or JSON) as this parameter's typed value; ValueError saying what is expected."""
        return _COERCE[self.type](self, value)

    def json_schema(self) -> dict[str, Any]:
        """This parameter as a JSON-schema property (the designer renders forms from it)."""
        schema: dict[str, Any] = {"title": self.name, **_SCHEMA[self.type]}
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = self.default
        if self.type is ParamType.CHOICE:
            schema["enum"] = list(self.choices)
        return schema

    def as_dict(self) -> dict[str, Any]:
        """The declaration as JSON (the inverse of ``load_parameters`` for one item)."""
        data: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.default is not None:
            data["default"] = self.default
        if self.description:
            data["description"] = self.description
        if self.required:
            data["required"] = True
        if self.choices:
            data["choices"] = list(self.choices)
        return data


def _string(p: Parameter, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected text")
    return value if isinstance(value, str) else str(value)


def _integer(p: Parameter, value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _number(p: Parameter, value: Any) -> int | float:
    if isinstance(value, str):
        text = value.strip()
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    else:
        number = value
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _boolean(p: Parameter, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _date(p: Parameter, value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):  # YAML 1.1 reads dates
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"expected a date like 2026-11-01, got {value!r}")


def _datetime(p: Parameter, value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"expected a date and time like 2026-11-01T02:00:00+01:00, got {value!r}")


def _choice(p: Parameter, value: Any) -> str:
    text = _string(p, value)
    if text not in p.choices:
        raise ValueError(f"expected one of {', '.join(p.choices)}, got {text!r}")
    return text


_COERCE = {
    ParamType.STRING: _string,
    ParamType.INTEGER: _integer,
    ParamType.NUMBER: _number,
    ParamType.BOOLEAN: _boolean,
    ParamType.DATE: _date,
    ParamType.DATETIME: _datetime,
    ParamType.CHOICE: _choice,
}
_SCHEMA: dict[ParamType, dict[str, Any]] = {
    ParamType.STRING: {"type": "string"},
    ParamType.INTEGER: {"type": "integer"},
    ParamType.NUMBER: {"type": "number"},
    ParamType.BOOLEAN: {"type": "boolean"},
    ParamType.DATE: {"type": "string", "format": "date", "examples": ["2026-11-01"]},
    ParamType.DATETIME: {"type": "string", "format": "date-time", "examples": ["2026-11-01T02:00:00+01:00"]},
    ParamType.CHOICE: {"type": "string"},
}


def make_parameter(
    name: str,
    type: str = "string",
    default: Any = None,
    description: str = "",
    required: bool = False,
    choices: Iterable[Any] = (),
) -> Parameter:
    """A checked declaration; ParameterError (keyed by ``name``) says what is wrong with it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(
            {str(name): "a parameter name uses letters, digits and _, not starting with a digit"}
        )
    try:
        kind = ParamType(type)
    except ValueError:
        known = ", ".join(t.value for t in ParamType)
        raise ParameterError({name: f"unknown type {type!r}; use one of {known}"}) from None
    options = tuple(str(c).strip() for c in choices if str(c).strip())
    if kind is ParamType.CHOICE and not options:
        raise ParameterError({name: "a choice parameter needs at least one choice"})
    if kind is not ParamType.CHOICE and options:
        raise ParameterError({name: "only a choice parameter has choices"})
    parameter = Parameter(name, kind, None, str(description or ""), bool(required), options)
    if default is None or default == "":
        return parameter
    try:
        typed = parameter.coerce(default)
    except ValueError as exc:
        raise ParameterError({name: f"default: {exc}"}) from None
    return Parameter(name, kind, typed, parameter.description, parameter.required, options)


def load_parameters(data: Any) -> list[Parameter]:
    """Declarations from JSON/YAML data: a list of ``{name, type, default, description, required,
    choices}``, or a mapping ``{name: {type, ...}}``. ParameterError lists every problem."""
    items: list[tuple[str, Any]]
    if isinstance(data, Mapping):
        items = [(str(k), {"name": k, **(v or {})} if isinstance(v, Mapping) else v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [
            (str(i.get("name", f"#{n + 1}")) if isinstance(i, Mapping) else f"#{n + 1}", i)
            for n, i in enumerate(data)
        ]
    else:
        raise ParameterError({"parameters": "expected a list of parameters or a mapping of names to them"})
    parameters: list[Parameter] = []
    problems: dict[str, str] = {}
    for key, item in items:
        if not isinstance(item, Mapping):
            problems[key] = "expected a mapping with at least 'name' and 'type'"
            continue
        unknown = set(item) - {"name", "type", "default", "description", "required", "choices"}
        if unknown:
            problems[key] = f"unknown key(s) {', '.join(sorted(map(str, unknown)))}"
            continue
        try:
            parameters.append(make_parameter(**dict(item)))
        except ParameterError as exc:
            problems.update(exc.problems)
        except TypeError as exc:
            problems[key] = str(exc)
    names = [p.name for p in parameters]
    for name in {n for n in names if names.count(n) > 1}:
        problems[name] = "declared twice"
    if problems:
        raise ParameterError(problems)
    return parameters


def check_values(
    parameters: Iterable[Parameter], values: Mapping[str, Any], *, fill_defaults: bool = True
) -> dict[str, Any]:
    """``values`` with every declared parameter typed (and missing ones given their default), names that
    are not declared kept as they are. ParameterError lists every value that does not fit and every
    required parameter without one. An empty text counts as not given."""
    typed = dict(values)
    problems: dict[str, str] = {}
    for p in parameters:
        given = p.name in values and not (isinstance(values[p.name], str) and values[p.name].strip() == "")
        given = given and values[p.name] is not None
        if not given:
            typed.pop(p.name, None)
            if fill_defaults and p.default is not None:
                typed[p.name] = p.default
            elif p.required:
                problems[p.name] = "required: give a value"
            continue
        try:
            typed[p.name] = p.coerce(values[p.name])
        except ValueError as exc:
            problems[p.name] = str(exc)
    if problems:
        raise ParameterError(problems)
    return typed


#: a value of each type, to check the arguments that use a parameter without a default
_EXAMPLES: dict[ParamType, Any] = {
    ParamType.STRING: "",
    ParamType.INTEGER: 0,
    ParamType.NUMBER: 0,
    ParamType.BOOLEAN: False,
    ParamType.DATE: "2026-01-01",
    ParamType.DATETIME: "2026-01-01T00:00:00+00:00",
}


def reference_values(parameters: Iterable[Parameter]) -> dict[str, Any]:
    """What validation substitutes for ``${{ variables.NAME }}`` of each parameter (a declared parameter
    is a defined variable): its default, else a value of its type."""
    return {
        p.name: p.default
        if p.default is not None
        else (p.choices[0] if p.type is ParamType.CHOICE else _EXAMPLES[p.type])
        for p in parameters
    }


def parameters_schema(parameters: Iterable[Parameter]) -> dict[str, Any]:
    """The JSON schema of an object holding the parameters (one property each, required ones listed)."""
    declared = list(parameters)
    return {
        "type": "object",
        "properties": {p.name: p.json_schema() for p in declared},
        "required": [p.name for p in declared if p.required and p.default is None],
    }


def run_context(run_id: str, logical: dt.datetime) -> dict[str, str]:
    """What ``${{ run.date }}`` (the logical date), ``run.datetime`` (ISO, with its offset) and ``run.id``
    resolve to in one run."""
    return {"date": logical.date().isoformat(), "datetime": logical.isoformat(), "id": str(run_id)}


def with_run_context(variables: Mapping[str, Any]) -> dict[str, Any]:
    """``variables`` with a run context: the one given (the web app's runs), else now and a new id."""
    merged = dict(variables)
    if RUN_CONTEXT not in merged:
        merged[RUN_CONTEXT] = run_context(uuid.uuid4().hex[:12], dt.datetime.now().astimezone())
    return merged
