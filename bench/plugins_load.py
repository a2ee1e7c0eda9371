"""The plugin ``bench/load.py`` runs: a step that reports progress at a steady rate, as a long extract does.

Registered in the workers' runs through ``PIPEDECK_PLUGIN_MODULES=bench.plugins_load`` (the fork server
imports it before forking each run's child).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from orchestrator.plugins import ExtractPlugin, StepContext

if TYPE_CHECKING:
    from orchestrator.plugins import Frame


class TickingExtract(ExtractPlugin):
    name = "bench_ticks"
    description = "Report progress `per_second` times a second for `seconds`, then produce a one-row table."

    class Args(BaseModel):
        per_second: float = Field(50, gt=0, description="Progress events a second")
        seconds: float = Field(10, ge=0, description="How long to keep reporting")

    async def extract(self, ctx: StepContext) -> Frame:
        import polars as pl

        loop = asyncio.get_running_loop()
        count = round(self.args.per_second * self.args.seconds)
        start = loop.time()
        for tick in range(1, count + 1):
            # on a schedule, not a fixed sleep: a late wake-up is made up, so the rate holds under load
            delay = start + tick / self.args.per_second - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            ctx.progress(tick, count)
        return pl.DataFrame({"ticks": [count]})
