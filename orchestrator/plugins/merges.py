"""Built-in plugins: merge the outputs of an extract phase's steps into one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins.base import COLUMN_NAMES, MergePlugin, PluginError, StepContext
from orchestrator.plugins.expressions import available, columns_of, polars_errors
from orchestrator.plugins.lazy import LazyModule

if TYPE_CHECKING:
    import polars as pl

    from orchestrator.plugins.base import Frame
else:
    pl = LazyModule("polars")


def _aligned(frames: dict[str, Frame]) -> dict[str, Frame]:
    """All eager, or all lazy when any is lazy (so a streamed input stays streamed)."""
    if any(isinstance(f, pl.LazyFrame) for f in frames.values()):
        return {k: f.lazy() for k, f in frames.items()}
    return frames


def _need_frames(frames: dict[str, Frame], least: int) -> None:
    if len(frames) < least:
        raise PluginError(f"needs at least {least} extract outputs to merge, got {len(frames)}")


class JoinMergeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    on: str | list[str] = Field(
        description="Join key column(s), present in every extract output",
        examples=["customer_id", ["id", "day"]],
        json_schema_extra=COLUMN_NAMES,
    )
    how: Literal["inner", "left", "full", "semi", "anti"] = Field(
        default="inner",
        description=(
            "inner: matching rows; left: every row of the first output; full: every row of both; "
            "semi / anti: rows of the first output with / without a match"
        ),
        examples=["inner", "left"],
    )


class JoinMerge(MergePlugin):
    name = "join_merge"
    description = "Join the extract outputs on key columns, in step order (inner, left, full, semi, anti)."
    Args = JoinMergeArgs

    def merge(self, ctx: StepContext, frames: dict[str, Frame]) -> Frame:
        _need_frames(frames, 1)
        on = [self.args.on] if isinstance(self.args.on, str) else list(self.args.on)
        frames = _aligned(frames)
        for step_id, frame in frames.items():
            columns = columns_of(frame)
            for key in on:
                if key not in columns:
                    raise PluginError(
                        f"join column '{key}' not found in the output of step '{step_id}'; "
                        f"its columns: {available(columns)}"
                    )
        items = list(frames.items())
        result = items[0][1]
        for step_id, frame in items[1:]:
            with polars_errors(frame, f"joining step '{step_id}'"):
                result = result.join(
                    frame,  # type: ignore[arg-type]
                    on=on,
                    how=self.args.how,
                    suffix=f"_{step_id}",
                    coalesce=True,
                    maintain_order="left",
                )
                if isinstance(result, pl.LazyFrame):
                    result.collect_schema()
        return result


class ConcatMergeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    how: Literal["vertical", "vertical_relaxed", "diagonal", "diagonal_relaxed", "horizontal"] = Field(
        default="vertical",
        description=(
            "vertical: stack rows, same columns and types; vertical_relaxed: also widen types; "
            "diagonal: stack rows, missing columns become null; horizontal: put columns side by side"
        ),
        examples=["vertical", "diagonal"],
    )


class ConcatMerge(MergePlugin):
    name = "concat_merge"
    description = "Stack the extract outputs (rows one after another, or columns side by side)."
    Args = ConcatMergeArgs

    def merge(self, ctx: StepContext, frames: dict[str, Frame]) -> Frame:
        _need_frames(frames, 1)
        frames = _aligned(frames)
        how = self.args.how
        if how == "vertical":
            first_id, first = next(iter(frames.items()))
            expected = columns_of(first)
            for step_id, frame in frames.items():
                if columns_of(frame) != expected:
                    raise PluginError(
                        f"the output of step '{step_id}' has columns {available(columns_of(frame))}, "
                        f"but step '{first_id}' has {available(expected)}; "
                        "use how: diagonal to stack different columns"
                    )
        with polars_errors(what=f"concat ({how})"):
            result = pl.concat(list(frames.values()), how=how)  # type: ignore[type-var]
            if isinstance(result, pl.LazyFrame):
                result.collect_schema()
        return result
