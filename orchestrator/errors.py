"""Errors a user can act on: what is wrong, where (line, column, key path), and usually how to fix it."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a project file; ``path`` is like ``pipelines.orders.phases.extract.steps[1]``."""

    message: str
    path: str = ""
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}" + (f", column {self.column}" if self.column is not None else ""))
        if self.path:
            where.append(self.path)
        return ": ".join([*where, self.message])


class SpecError(Exception):
    """A project file that cannot be used; ``problems`` lists everything found, in file order."""

    def __init__(self, problems: Iterable[Problem], source: str = "<string>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        head = f"{self.source}: {len(self.problems)} problems"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[\w-]+")


def format_path(loc: Iterable[str | int]) -> str:
    """``('pipelines', 'orders', 'steps', 1, 'args')`` -> ``pipelines.orders.steps[1].args``."""
    out = ""
    for part in loc:
        out = child_path(out, part)
    return out


def child_path(parent: str, part: str | int) -> str:
    """The path of ``part`` inside ``parent`` (keys that are not plain names are quoted in brackets)."""
    if isinstance(part, int):
        return f"{parent}[{part}]"
    if _PLAIN_KEY.fullmatch(part):
        return f"{parent}.{part}" if parent else part
    return f"{parent}[{json.dumps(part, ensure_ascii=False)}]"


def describe_value(value: Any) -> str:
    """How a value reads to a user in "expected X, got Y" messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` did you mean 'x'?`` (or ``'x' or 'y'``) when ``word`` is close to some choices, else ``""``."""
    scored = sorted((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in set(choices))
    best = scored[-1][0] if scored else 0.0
    # only the best match and those about as good: "read_row" suggests read_rows, not also write_rows
    close = [c for ratio, c in reversed(scored) if ratio >= max(0.6, best - 0.1)][:3]
    if not close:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in close)}?"


_COUNT_NOUNS = {"steps": "step", "pipelines": "pipeline"}


def humanize_error(
    error: ErrorDetails, *, noun: str = "key", allowed: Callable[[Loc], list[str] | None] | None = None
) -> str:
    """One pydantic error in words a user understands (``noun`` is what a mapping key is called)."""
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    last = loc[-1] if loc else None
    got = describe_value(error.get("input"))
    if kind == "missing":
        return f"missing required {noun} '{last}'"
    if kind == "extra_forbidden":
        known = (allowed(loc[:-1]) if allowed else None) or []
        hint = suggest(str(last), known)
        if not hint and known:
            hint = f"; expected one of: {', '.join(sorted(known))}"
        return f"unknown {noun} '{last}'{hint}"
    if kind == "list_type":
        return f"expected a list, got {got}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"expected a mapping of keys and values, got {got}"
    if kind == "string_type":
        return f"expected text, got {got}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, got {got}"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, got {got}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {got}"
    if kind in {"enum", "literal_error"}:
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {got}"
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(**{k: _number(v) for k, v in ctx.items()})
    if kind == "too_short":
        item = _COUNT_NOUNS.get(str(last))
        if item and ctx.get("min_length") == 1:
            return f"needs at least one {item}"
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in {"value_error", "assertion_error"}:
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(error["msg"])


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def problems_from_validation_error(
    exc: ValidationError,
    *,
    prefix: Loc = (),
    noun: str = "key",
    allowed: Callable[[Loc], list[str] | None] | None = None,
) -> list[tuple[Problem, Loc]]:
    """Turn a pydantic ValidationError into Problems, each with the full location of the offending node.

    A missing or unknown key is reported on the mapping that should (not) hold it; the location returned
    beside it still ends with the key, so a caller can point at the key itself.
    """
    out = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p != "[key]")
        message = humanize_error({**error, "loc": loc}, noun=noun, allowed=allowed)
        where = loc[:-1] if error["type"] in {"missing", "extra_forbidden"} else loc
        out.append((Problem(message, format_path((*prefix, *where))), (*prefix, *loc)))
    return out
