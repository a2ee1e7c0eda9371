"""Example third-party plugins: registered through the ``pipedeck.plugins`` entry point.

Heavy libraries (Polars here, and asyncio: 30 ms with the ssl it imports) are imported inside the
calls: the registry imports this module whenever it lists or validates plugins, and ``validate`` should
not pay for a library no step runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins import ExtractPlugin, LoadPlugin, StepContext

if TYPE_CHECKING:
    from orchestrator.plugins import Frame


class SleepExtract(ExtractPlugin):
    name = "sleep_extract"
    description = "Wait a while, then produce a one-row table (for demos and benchmarks)."

    class Args(BaseModel):
        model_config = ConfigDict(defer_build=True)  # its validator built when a step uses it
        seconds: float = Field(0.05, ge=0, description="How long to wait", examples=[0.05])
        rows: int = Field(1, ge=0, description="Rows of the produced table", examples=[1])

    async def extract(self, ctx: StepContext) -> Frame:
        import asyncio

        import polars as pl

        await asyncio.sleep(self.args.seconds)
        ctx.logger.info("slept %.3f s", self.args.seconds)
        return pl.DataFrame({"x": list(range(self.args.rows))})


class SleepLoad(LoadPlugin):
    name = "sleep_load"
    description = "Wait a while and discard the table (for demos and benchmarks)."

    class Args(BaseModel):
        model_config = ConfigDict(defer_build=True)
        seconds: float = Field(0.05, ge=0, description="How long to wait", examples=[0.05])

    async def load(self, ctx: StepContext, data: Frame) -> None:
        import asyncio

        await asyncio.sleep(self.args.seconds)
