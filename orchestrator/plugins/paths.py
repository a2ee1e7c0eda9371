"""Files a step may touch: every path resolves inside the data root, never outside it."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from orchestrator.plugins.base import PluginError

_GLOB_CHARS = frozenset("*?[")


def is_glob(path: str) -> bool:
    """True when ``path`` holds a glob pattern (``*``, ``?`` or ``[...]``)."""
    return any(c in _GLOB_CHARS for c in path)


def _check_inside(root: Path, resolved: Path, given: str) -> Path:
    if not resolved.is_relative_to(root):
        raise PluginError(
            f"path '{given}' resolves to {resolved}, outside the data root {root}; "
            "give a path inside the data root (symlinks may not point out of it)"
        )
    return resolved


def resolve_path(data_root: Path, path: str) -> Path:
    """Resolve ``path`` (relative to the data root, or absolute inside it); reject anything escaping it."""
    if not path or not path.strip():
        raise PluginError("path is empty; give a file path relative to the data root")
    root = Path(data_root).resolve()
    given = Path(path)
    if ".." in given.parts:
        raise PluginError(f"path '{path}' contains '..'; give a path inside the data root {root}")
    candidate = given if given.is_absolute() else root / given
    if given.is_absolute() and not candidate.resolve().is_relative_to(root):
        raise PluginError(f"absolute path '{path}' is outside the data root {root}; use a path inside it")
    return _check_inside(root, candidate.resolve(), path)


def input_files(data_root: Path, path: str) -> list[Path]:
    """The existing files ``path`` names (a glob may match several, sorted); a clear error when none."""
    root = Path(data_root).resolve()
    if not is_glob(path):
        resolved = resolve_path(data_root, path)
        if not resolved.exists():
            raise PluginError(f"file '{path}' not found in the data root {root} (looked for {resolved})")
        if resolved.is_dir():
            raise PluginError(f"'{path}' is a directory; give a file, or a glob such as '{path}/*.csv'")
        return [resolved]
    given = Path(path)
    if ".." in given.parts:
        raise PluginError(f"path '{path}' contains '..'; give a path inside the data root {root}")
    pattern = path if given.is_absolute() else str(root / path)
    matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
    files = [_check_inside(root, m.resolve(), str(m)) for m in matches if m.is_file()]
    if not files:
        raise PluginError(f"no file matches '{path}' in the data root {root}")
    return files


def output_path(data_root: Path, path: str) -> Path:
    """Where a load writes ``path``: inside the data root, parent directories created."""
    if is_glob(path):
        raise PluginError(f"output path '{path}' contains a glob character (*, ? or [); give one file name")
    resolved = resolve_path(data_root, path)
    if resolved.is_dir():
        raise PluginError(f"output path '{path}' is a directory; give a file name")
    resolved.parent.mkdir(parents=True, exist_ok=True)
    return resolved


@contextlib.contextmanager
def atomic_target(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it over ``final`` only when the block succeeds.

    The temporary file lives in its own hidden directory, removed afterwards: a writer that fails may
    still create its file a moment later (Polars sinks do), and then it cannot, the directory being gone.
    """
    tmp_dir = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp_dir.mkdir()
    try:
        yield tmp_dir / final.name
        os.replace(tmp_dir / final.name, final)
    finally:
        for _ in range(5):
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if not tmp_dir.exists():
                break
            time.sleep(0.05)
