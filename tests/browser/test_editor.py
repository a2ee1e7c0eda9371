"""The editor in a real Chromium against a live Daphne: build, fill, reorder, save, download, upload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def drop(page: Page, plugin: str, phase: str) -> None:
    """Drag a plugin from the palette into a phase lane and wait for the server's answer."""
    source = page.locator(f".palette .plugin[data-plugin={plugin}]")
    target = page.locator(f"#steps-{phase}-steps")
    before = target.locator(".step").count()
    source.drag_to(target)
    expect(page.locator(f"#steps-{phase}-steps .step:not(.pending)")).to_have_count(before + 1)


def fill_step(page: Page, phase: str, step_id: str, values: dict[str, str]) -> None:
    page.locator(f"#steps-{phase}-steps .step[data-id={step_id}] .step-open").click()
    expect(page.locator("#step-form input[name=id]")).to_have_value(step_id)
    for name, value in values.items():
        page.fill(f"#arg-{name}", value)
    page.click("#step-apply")
    expect(page.locator("#step-saved")).to_be_visible()


def test_build_a_pipeline_by_drag_and_drop(
    logged_in_page: Page, live_server_url, browser_user, artifacts_dir
):
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.fill("#new-pipeline-name", "orders_daily")
    page.click("#new-pipeline-create")
    page.wait_for_url(re.compile(r".*/p/lab/demo/orders_daily/$"))
    expect(page.locator("#validity")).to_contain_text("Draft")

    page.fill("#palette-search", "csv")
    expect(page.locator(".palette .plugin[data-plugin=filter_rows]")).to_be_hidden()
    drop(page, "csv_extract", "extract")
    page.fill("#palette-search", "")
    drop(page, "filter_rows", "transform")
    drop(page, "sort_rows", "transform")
    drop(page, "csv_load", "load")

    fill_step(page, "extract", "csv_extract", {"path": "orders.csv"})
    fill_step(page, "transform", "filter_rows", {"expr": "amount > 10"})
    fill_step(page, "transform", "sort_rows", {"by": "amount"})
    fill_step(page, "load", "csv_load", {"path": "out/big_orders.csv"})
    expect(page.locator("#validity")).to_have_text("Valid")

    # reorder the two transform steps: sort first, then filter
    steps = page.locator("#steps-transform-steps .step")
    expect(steps).to_have_count(2)
    steps.nth(1).drag_to(steps.nth(0), target_position={"x": 5, "y": 5})
    expect(page.locator("#steps-transform-steps .step").first).to_have_attribute("data-id", "sort_rows")

    page.fill("#save-message", "first version")
    page.click("#save-button")
    expect(page.locator("#notice")).to_have_text("Saved version 1")
    page.screenshot(path=str(artifacts_dir / "editor.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#download-pipeline")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename == "orders_daily.yaml"
    assert "pipelines:\n  orders_daily:\n    type: ETL\n" in text
    assert text.index("id: sort_rows") < text.index("id: filter_rows")
    assert "path: orders.csv" in text and "expr: amount > 10" in text and "path: out/big_orders.csv" in text

    # the YAML tab shows the same pipeline
    page.click(".tab[data-tab=yaml]")
    expect(page.locator("#yaml-text")).to_have_value(re.compile("plugin: csv_load"))


def test_upload_a_broken_yaml_shows_the_line(logged_in_page: Page, live_server_url, tmp_path):
    page = logged_in_page
    broken = tmp_path / "broken.yaml"
    broken.write_text("pipelines:\n  a:\n    type: ETL\n    phases:\n      extract:\n        steps: [\n")
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.set_input_files("#upload-file", str(broken))
    page.click("#upload-button")
    errors = page.locator(".upload-errors")
    expect(errors).to_contain_text("Nothing was saved")
    expect(errors).to_contain_text(re.compile(r"line \d+"))


def test_yaml_tab_and_type_switch(logged_in_page: Page, live_server_url, browser_user):
    from designer.editor import pipelines as service
    from tests.factory import SLEEP_SPEC

    project = browser_user["project"]
    pipeline = service.create_pipeline(project, "nightly", "ETL", browser_user["user"])
    spec = {
        **SLEEP_SPEC,
        "phases": {
            **SLEEP_SPEC["phases"],
            "transform": {"steps": [{"plugin": "filter_rows", "args": {"expr": "x > 1"}}]},
        },
    }
    service.store(pipeline, spec)
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/nightly/")

    # an invalid YAML edit shows its line and changes nothing
    page.click("#yaml-tab")
    expect(page.locator("#yaml-text")).to_have_value(re.compile("plugin: filter_rows"))
    text = page.locator("#yaml-text").input_value()
    lines = text.splitlines()
    bad_line = next(i for i, line in enumerate(lines, 1) if "plugin: filter_rows" in line)
    page.fill("#yaml-text", text.replace("plugin: filter_rows", "plugin: filter_rowz"))
    page.click("#yaml-apply")
    expect(page.locator(".yaml-errors")).to_contain_text(f"line {bad_line}")
    expect(page.locator(".yaml-errors")).to_contain_text("unknown plugin 'filter_rowz'")
    # a valid edit updates the lanes
    page.fill("#yaml-text", text.replace("x > 1", "x > 2"))
    page.click("#yaml-apply")
    expect(page.locator("#yaml-panel .notice-ok")).to_have_text("YAML applied.")
    page.click(".tab[data-tab=design]")
    expect(page.locator("#steps-transform-steps .step-summary")).to_have_text("expr: x > 2")

    # switching to ELT warns about the transform step; dismissing keeps everything
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.select_option("#type-select", "ELT")
    expect(page.locator("#type-select")).to_have_value("ETL")
    expect(page.locator("#lane-transform")).to_be_visible()
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.select_option("#type-select", "ELT")
    expect(page.locator("#lane-transform_at_load")).to_be_visible()
    expect(page.locator("#lane-transform")).to_have_count(0)
    assert "transform.filter_rows" in messages[0]
    expect(page.locator("#notice")).to_contain_text("Dropped 1 step(s): transform.filter_rows")


def test_project_graph_edges_and_cycles(logged_in_page: Page, live_server_url, browser_user, artifacts_dir):
    import copy

    from tests.factory import SLEEP_SPEC, make_pipeline

    project = browser_user["project"]
    make_pipeline(project, "a")
    make_pipeline(project, "b", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["a"]})
    make_pipeline(project, "c")
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.wait_for_function("() => window.pipedeckGraph && pipedeckGraph.nodes().length === 3")
    assert page.evaluate("pipedeckGraph.edges().map(e => e.id())") == ["a->b"]
    page.select_option("#needs-form select[name=pipeline]", "c")
    page.select_option("#needs-form select[name=needs]", "b")
    page.click("#needs-form button")
    page.wait_for_function("() => window.pipedeckGraph && pipedeckGraph.edges().length === 2")
    expect(page.locator("#pipeline-table tr", has_text="c").locator("td").nth(2)).to_have_text("b")
    page.select_option("#needs-form select[name=pipeline]", "a")
    page.select_option("#needs-form select[name=needs]", "c")
    page.click("#needs-form button")
    expect(page.locator("#graph-error")).to_contain_text("that makes a cycle a -> c -> b -> a")
    assert page.evaluate("pipedeckGraph.edges().length") == 2
    page.screenshot(path=str(artifacts_dir / "project.png"), full_page=True)
