"""The process table, read from /proc: to check that no process of a run outlives it."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def parent(pid: int) -> int | None:
    """The parent of ``pid``, None when it is gone."""
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren...)."""
    parents = {int(p): parent(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, up in parents.items() if up == current and alive(child)]
        found += children
        frontier += children
    return found
