"""A plugin that reports what a run's process can see (environment, files, limits) in its log.

Registered in runs of the web app through ``PIPEDECK_PLUGIN_MODULES``: plugins are installed code, so
this is what the most curious plugin could learn, and the tests check that it is nothing of the app's.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from orchestrator.plugins.base import ExtractPlugin, Frame, StepContext


class ProbeExtract(ExtractPlugin):
    name = "probe_extract"
    description = "Log what the process sees: environment, working directory, limits, process group."

    async def extract(self, ctx: StepContext) -> Frame:
        with open("/proc/self/environ", "rb") as f:
            initial_environment = f.read().decode("utf-8", "replace").split("\0")
        report = {
            "environ": sorted(os.environ),
            "initial_environ": sorted(entry.split("=", 1)[0] for entry in initial_environment if entry),
            "initial_environ_text": "\n".join(initial_environment),
            "cwd": os.getcwd(),
            "data_root": str(ctx.data_root),
            "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
            "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "leader_of_its_group": os.getpgid(0) == os.getpid(),
            "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        }
        ctx.logger.info("probe %s", json.dumps(report))
        return pl.DataFrame({"x": [1]})


class CrashArgs(BaseModel):
    how: Literal["abort", "segfault", "exit"] = Field(description="How the process dies")


class CrashExtract(ExtractPlugin):
    name = "crash_extract"
    description = "End the run's process the hard way (a plugin with a native bug)."
    Args = CrashArgs

    async def extract(self, ctx: StepContext) -> Frame:
        if self.args.how == "abort":
            os.abort()
        if self.args.how == "segfault":
            ctypes.string_at(0)
        os._exit(3)
