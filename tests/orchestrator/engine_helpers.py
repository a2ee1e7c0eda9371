"""Test-local plugins and spec builders for the engine, scheduler and CLI tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.plugins import (
    ExtractPlugin,
    Frame,
    LoadPlugin,
    MergePlugin,
    PluginError,
    PluginRegistry,
    PostPlugin,
    PrePlugin,
    StepContext,
    TransformAtLoadPlugin,
    TransformPlugin,
)
from orchestrator.plugins.base import SECRET_FIELD
from orchestrator.spec import ProjectSpec


class Tracker:
    """Counts steps running at once and records (what, when) marks, across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.marks: list[tuple[str, float]] = []
        self.loads: dict[str, Frame] = {}
        self.attempts: dict[str, int] = {}

    def enter(self, what: str) -> None:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.marks.append((f"start {what}", time.perf_counter()))

    def leave(self, what: str) -> None:
        with self.lock:
            self.running -= 1
            self.marks.append((f"end {what}", time.perf_counter()))

    def mark(self, what: str) -> None:
        with self.lock:
            self.marks.append((what, time.perf_counter()))

    def names(self) -> list[str]:
        return [m for m, _ in self.marks]

    def at(self, what: str) -> float:
        return next(t for m, t in self.marks if m == what)

    def attempt(self, key: str) -> int:
        with self.lock:
            self.attempts[key] = self.attempts.get(key, 0) + 1
            return self.attempts[key]


TRACKER = Tracker()


class WaitArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = 0.0
    rows: int = 1
    fail: str | None = None
    fail_times: int = 0


class WaitExtract(ExtractPlugin):
    name = "wait_extract"
    Args = WaitArgs

    async def extract(self, ctx: StepContext) -> Frame:
        key = f"{ctx.pipeline}.{ctx.step_id}"
        TRACKER.enter(key)
        try:
            if TRACKER.attempt(key) <= self.args.fail_times:
                raise PluginError(f"attempt failed on purpose ({key})")
            await asyncio.sleep(self.args.seconds)
            if self.args.fail:
                raise PluginError(self.args.fail)
            return pl.DataFrame({"n": list(range(self.args.rows))})
        finally:
            TRACKER.leave(key)


class LazyExtract(ExtractPlugin):
    name = "lazy_extract"

    async def extract(self, ctx: StepContext) -> Frame:
        return pl.LazyFrame({"n": [1, 2, 3]})


class BrokenExtract(ExtractPlugin):
    name = "broken_extract"

    class Args(BaseModel):
        message: str = "boom"

    async def extract(self, ctx: StepContext) -> Frame:
        raise ValueError(self.args.message)


class NotAFrameExtract(ExtractPlugin):
    name = "not_a_frame_extract"

    async def extract(self, ctx: StepContext) -> Frame:
        return 42  # type: ignore[return-value]


class ChattyExtract(ExtractPlugin):
    name = "chatty_extract"

    async def extract(self, ctx: StepContext) -> Frame:
        ctx.logger.info("reading %d rows", 3)
        ctx.logger.debug("not captured: below INFO")
        ctx.progress(2, total=3)
        ctx.progress(3, total=3)
        ctx.logger.warning("done")
        return pl.DataFrame({"n": [1, 2, 3]})


class ConcatMerge(MergePlugin):
    name = "concat_merge"

    def merge(self, ctx: StepContext, frames: dict[str, Frame]) -> Frame:
        TRACKER.mark(f"merge {','.join(frames)}")
        return pl.concat([f.lazy() for f in frames.values()]).collect()


class TagTransform(TransformPlugin):
    """Adds a column named after ``tag``: the output's columns show the order the steps ran in."""

    name = "tag_transform"

    class Args(BaseModel):
        tag: str
        sleep: float = 0.0
        fail: str | None = None
        fail_times: int = 0
        keep_first: int | None = None

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        key = f"{ctx.pipeline}.{ctx.step_id}"
        TRACKER.mark(f"transform {self.args.tag} in {threading.current_thread().name}")
        ctx.logger.info("tagging %s", self.args.tag)
        if TRACKER.attempt(key) <= self.args.fail_times:
            raise PluginError(f"attempt failed on purpose ({key})")
        if self.args.sleep:
            time.sleep(self.args.sleep)  # blocking on purpose: must not block the loop
        if self.args.fail:
            raise PluginError(self.args.fail)
        out = data.with_columns(pl.lit(self.args.tag).alias(self.args.tag))
        return out.head(self.args.keep_first) if self.args.keep_first is not None else out


class EchoTransform(TransformPlugin):
    """Fails with its (resolved) ``text`` argument: shows what args resolved to, and redaction."""

    name = "echo_transform"

    class Args(BaseModel):
        text: Any = Field(json_schema_extra=SECRET_FIELD)  # may hold a secret: redaction is tested with it

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        raise PluginError(f"resolved to {self.args.text!r}")


class SecretPeekTransform(TransformPlugin):
    """Reads a secret through ``ctx.secrets`` and (wrongly) logs it: the log line must come out redacted."""

    name = "secret_peek_transform"

    class Args(BaseModel):
        secret: str

    def transform(self, ctx: StepContext, data: Frame) -> Frame:
        ctx.logger.info(
            "declared %s; %s is %s", sorted(ctx.secrets), self.args.secret, ctx.secrets[self.args.secret]
        )
        return data


class WaitLoad(LoadPlugin):
    name = "wait_load"

    class Args(BaseModel):
        seconds: float = 0.0
        fail: str | None = None

    async def load(self, ctx: StepContext, data: Frame) -> None:
        key = f"{ctx.pipeline}.{ctx.step_id}"
        TRACKER.enter(key)
        try:
            await asyncio.sleep(self.args.seconds)
            if self.args.fail:
                raise PluginError(self.args.fail)
            TRACKER.loads[key] = data
        finally:
            TRACKER.leave(key)


class MarkPre(PrePlugin):
    name = "mark_pre"

    async def run(self, ctx: StepContext) -> None:
        TRACKER.mark(f"pre {ctx.phase} {ctx.step_id}")


class MarkPost(PostPlugin):
    name = "mark_post"

    async def run(self, ctx: StepContext, data: Frame | None) -> None:
        rows = data.height if isinstance(data, pl.DataFrame) else None
        TRACKER.mark(f"post {ctx.phase} {ctx.step_id} rows={rows}")


class MarkAtLoad(TransformAtLoadPlugin):
    name = "mark_at_load"

    class Args(BaseModel):
        sleep: float = 0.0

    def execute(self, ctx: StepContext) -> None:
        if self.args.sleep:
            time.sleep(self.args.sleep)
        TRACKER.mark(f"at_load {ctx.step_id}")


def make_registry() -> PluginRegistry:
    """A fresh registry with only the plugins above (no built-ins, no entry points)."""
    reg = PluginRegistry.empty()
    for cls in (
        WaitExtract,
        LazyExtract,
        BrokenExtract,
        NotAFrameExtract,
        ChattyExtract,
        ConcatMerge,
        TagTransform,
        EchoTransform,
        SecretPeekTransform,
        WaitLoad,
        MarkPre,
        MarkPost,
        MarkAtLoad,
    ):
        reg.register(cls)
    return reg


def step(plugin: str, id: str = "", **args: Any) -> dict[str, Any]:  # noqa: A002 - the spec's key
    """A step dict; options (timeout, retries, retry_backoff) go in ``args`` with a leading underscore."""
    options = {k[1:]: args.pop(k) for k in list(args) if k.startswith("_")}
    return {"id": id, "plugin": plugin, "args": args, **options}


def pipeline(
    extract: list[dict[str, Any]] | None = None,
    *,
    transform: list[dict[str, Any]] | None = None,
    load: list[dict[str, Any]] | None = None,
    at_load: list[dict[str, Any]] | None = None,
    merge: dict[str, Any] | None = None,
    needs: list[str] | None = None,
    extract_extra: dict[str, Any] | None = None,
    load_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pipeline dict; its type follows from the phases given (ETL, or ETLT with ``at_load``)."""
    extract = extract or [step("wait_extract", "read")]
    if len(extract) > 1 and merge is None:
        merge = step("concat_merge", "merge")
    phases: dict[str, Any] = {
        "extract": {"steps": extract, **({"merge": merge} if merge else {}), **(extract_extra or {})},
        "load": {"steps": load or [step("wait_load", "write")], **(load_extra or {})},
    }
    if transform is not None:
        phases["transform"] = {"steps": transform}
    if at_load is not None:
        phases["transform_at_load"] = {"steps": at_load}
    kind = "ETLT" if at_load is not None else "ETL"
    return {"type": kind, "needs": needs or [], "phases": phases}


def project(pipelines: Mapping[str, dict[str, Any]], **top: Any) -> ProjectSpec:
    return ProjectSpec.model_validate({"pipelines": dict(pipelines), **top})
