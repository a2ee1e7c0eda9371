"""Errors a user can act on: what is wrong, where (line, column, key path), and usually how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])
