"""Example third-party plugins: registered through the ``pipedeck.plugins`` entry point."""

from __future__ import annotations

import asyncio

import polars as pl
from pydantic import BaseModel, Field

from orchestrator.plugins import ExtractPlugin, Frame, LoadPlugin, StepContext


class SleepExtract(ExtractPlugin):
    name = "sleep_extract"
    description = "Wait a while, then produce a one-row table (for demos and benchmarks)."

    class Args(BaseModel):
        seconds: float = Field(0.05, ge=0, description="How long to wait", examples=[0.05])
        rows: int = Field(1, ge=0, description="Rows of the produced table", examples=[1])

    async def extract(self, ctx: StepContext) -> Frame:
        await asyncio.sleep(self.args.seconds)
        ctx.logger.info("slept %.3f s", self.args.seconds)
        return pl.DataFrame({"x": list(range(self.args.rows))})


class SleepLoad(LoadPlugin):
    name = "sleep_load"
    description = "Wait a while and discard the table (for demos and benchmarks)."

    class Args(BaseModel):
        seconds: float = Field(0.05, ge=0, description="How long to wait", examples=[0.05])

    async def load(self, ctx: StepContext, data: Frame) -> None:
        await asyncio.sleep(self.args.seconds)
