"""Helpers for calling plugins directly: a StepContext rooted in a temporary data root."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.plugins import StepContext


class Progress:
    """Records the (rows, total) reports a step makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, rows: int, total: int | None) -> None:
        self.calls.append((rows, total))


def make_ctx(data_root: Path, plugin: str = "test_plugin", **kw: Any) -> StepContext:
    """A StepContext for calling a plugin directly in a test."""
    return StepContext(
        pipeline=kw.pop("pipeline", "test_pipeline"),
        phase=kw.pop("phase", "extract"),
        step_id=kw.pop("step_id", "step"),
        plugin=plugin,
        logger=logging.getLogger(f"pipedeck.test.{plugin}"),
        data_root=data_root,
        **kw,
    )


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def progress() -> Progress:
    return Progress()


@pytest.fixture
def ctx(data_root: Path, progress: Progress) -> StepContext:
    return make_ctx(data_root, on_progress=progress)


@pytest.fixture
def ctx_factory(data_root: Path) -> Callable[..., StepContext]:
    return lambda **kw: make_ctx(data_root, **kw)
