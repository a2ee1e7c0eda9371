"""The plugin registry's contract: early TypeErrors for broken classes, lookups, entry-point discovery."""

from __future__ import annotations

import logging
import types

import polars as pl
import pytest
from pydantic import BaseModel

from orchestrator.plugins import (
    ExtractPlugin,
    Frame,
    LoadPlugin,
    Plugin,
    PluginKind,
    PluginRegistry,
    PrePlugin,
    StepContext,
    TransformPlugin,
)
from orchestrator.plugins.registry import ENTRY_POINT_GROUP, UnknownPlugin


class Good(ExtractPlugin):
    name = "good_extract"
    description = "A well-formed plugin."

    class Args(BaseModel):
        rows: int = 1

    async def extract(self, ctx: StepContext) -> Frame:
        return pl.DataFrame({"x": [1]})


class NoName(ExtractPlugin):
    async def extract(self, ctx: StepContext) -> Frame:
        return pl.DataFrame()


class BadName(ExtractPlugin):
    name = "not an identifier"

    async def extract(self, ctx: StepContext) -> Frame:
        return pl.DataFrame()


class NoKind(Plugin):
    name = "no_kind"


class BadArgs(ExtractPlugin):
    name = "bad_args"
    Args = dict  # type: ignore[assignment]

    async def extract(self, ctx: StepContext) -> Frame:
        return pl.DataFrame()


class NoCall(LoadPlugin):
    name = "no_call"


class SyncExtract(ExtractPlugin):
    name = "sync_extract"

    def extract(self, ctx: StepContext) -> Frame:  # type: ignore[override]
        return pl.DataFrame()


class AsyncTransform(TransformPlugin):
    name = "async_transform"

    async def transform(self, ctx: StepContext, data: Frame) -> Frame:  # type: ignore[override]
        return data


class SyncPre(PrePlugin):
    name = "sync_pre"

    def run(self, ctx: StepContext) -> None:  # type: ignore[override]
        return None


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (int, "<class 'int'> is not a subclass of orchestrator.plugins.Plugin"),
        (NoName, "NoName.name must be an identifier string, got None"),
        (BadName, "BadName.name must be an identifier string, got 'not an identifier'"),
        (
            NoKind,
            "plugin 'no_kind': kind must be one of "
            "extract, merge, transform, load, transform_at_load, pre, post, secret",
        ),
        (BadArgs, "plugin 'bad_args': Args must be a pydantic BaseModel subclass"),
        (NoCall, "plugin 'no_call' (load) must define load()"),
        (SyncExtract, "plugin 'sync_extract': extract() must be async def for kind extract"),
        (AsyncTransform, "plugin 'async_transform': transform() must be def (not async) for kind transform"),
        (SyncPre, "plugin 'sync_pre': run() must be async def for kind pre"),
    ],
)
def test_registering_a_broken_plugin_class_raises_type_error(cls: type, message: str) -> None:
    with pytest.raises(TypeError) as raised:
        PluginRegistry().register(cls)
    assert str(raised.value) == message


def test_a_registered_plugin_can_be_found_and_described() -> None:
    reg = PluginRegistry.empty()
    assert reg.register(Good) is Good  # usable as a decorator
    assert reg.get("good_extract") is Good
    assert "good_extract" in reg
    assert reg.all(PluginKind.EXTRACT) == [Good] and reg.all(PluginKind.LOAD) == []
    described = reg.describe("good_extract")
    assert {k: described[k] for k in ("name", "kind", "description", "module")} == {
        "name": "good_extract",
        "kind": "extract",
        "description": "A well-formed plugin.",
        "module": __name__,
    }
    assert described["args_schema"]["properties"]["rows"]["default"] == 1


def test_an_unknown_plugin_names_itself_and_lists_the_known_ones() -> None:
    reg = PluginRegistry.empty()
    reg.register(Good)
    with pytest.raises(UnknownPlugin) as raised:
        reg.get("nope")
    assert str(raised.value) == "unknown plugin 'nope'"
    assert raised.value.known == ["good_extract"]


def test_register_module_takes_only_the_modules_own_concrete_plugins() -> None:
    module = types.ModuleType("some_plugins")
    Mine = type("Mine", (Good,), {"name": "mine", "__module__": "some_plugins"})
    module.Mine = Mine  # type: ignore[attr-defined]
    module.Good = Good  # type: ignore[attr-defined] # imported from elsewhere: not registered again
    module.ExtractPlugin = ExtractPlugin  # type: ignore[attr-defined] # a base: no name of its own
    reg = PluginRegistry.empty()
    reg.register_module(module)
    assert [p.name for p in reg.all()] == ["mine"]


def test_replacing_a_plugin_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    reg = PluginRegistry.empty()
    reg.register(Good)
    Other = type("Other", (Good,), {"name": "good_extract", "__module__": "elsewhere"})
    with caplog.at_level(logging.WARNING, logger="orchestrator.plugins.registry"):
        reg.register(Other)
    assert reg.get("good_extract") is Other
    assert caplog.messages == [f"plugin 'good_extract' from elsewhere replaces {__name__}"]


def test_entry_point_plugins_are_discovered() -> None:
    reg = PluginRegistry().load()  # built-ins + the installed example package examples/pipedeck-sleep-plugin
    assert reg.get("sleep_extract").__module__ == "pipedeck_sleep"
    assert reg.get("sleep_load").kind == PluginKind.LOAD
    assert "csv_extract" in reg  # the built-ins load too
    assert ENTRY_POINT_GROUP == "pipedeck.plugins"


def test_a_thread_asking_while_another_loads_waits_for_the_whole_catalogue(monkeypatch) -> None:
    import importlib
    import threading
    import time

    registry_module = importlib.import_module("orchestrator.plugins.registry")
    slow_import = importlib.import_module

    def import_module(path: str):  # type: ignore[no-untyped-def]
        time.sleep(0.02)  # the server's first import of the built-ins, on a busy machine
        return slow_import(path)

    monkeypatch.setattr(registry_module.importlib, "import_module", import_module)
    fresh = registry_module.PluginRegistry()
    loader = threading.Thread(target=fresh.load)
    loader.start()
    time.sleep(0.01)
    try:
        assert fresh.get("csv_extract").name == "csv_extract"  # not UnknownPlugin from a half-loaded registry
    finally:
        loader.join()
