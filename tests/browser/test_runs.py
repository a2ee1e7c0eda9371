"""Runs in a real Chromium against a live Daphne (with its embedded worker): live step states, cancel."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factory import make_pipeline

pytestmark = pytest.mark.browser


def sleep_spec(seconds: float, load_seconds: float = 0) -> dict:
    return {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "wait", "plugin": "sleep_extract", "args": {"seconds": seconds}}]},
            "load": {"steps": [{"id": "sink", "plugin": "sleep_load", "args": {"seconds": load_seconds}}]},
        },
    }


def run_sockets(page: Page) -> list[tuple[int, int]]:
    """(run id, ?after=) of every run websocket the page opened, in order (collected from the start)."""
    return [
        (int(m.group(1)), int(m.group(2)))
        for m in (re.search(r"/ws/runs/(\d+)/\?after=(\d+)$", url) for url in page.opened_sockets)  # type: ignore[attr-defined]
        if m
    ]


def record_sockets(page: Page) -> None:
    page.opened_sockets = []  # type: ignore[attr-defined]
    page.on("websocket", lambda ws: page.opened_sockets.append(ws.url))  # type: ignore[attr-defined]


def start_from_editor(page: Page, live_server_url: str, pipeline: str) -> None:
    page.goto(f"{live_server_url}/p/lab/demo/{pipeline}/")
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    page.evaluate("window.__notReloaded = true")


def test_a_run_started_from_the_editor_shows_steps_going_from_running_to_succeeded(
    logged_in_page: Page, live_server_url, browser_user, artifacts_dir
):
    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(1.5))
    page = logged_in_page
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    start_from_editor(page, live_server_url, "orders")
    wait = page.locator('.run-step[data-step="wait"]')
    expect(wait).to_have_attribute("data-state", "running", timeout=10_000)
    expect(page.locator('.run-step[data-step="sink"]')).to_have_attribute("data-state", "queued")
    expect(wait).to_have_attribute("data-state", "succeeded", timeout=10_000)
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded")
    expect(wait.locator(".step-duration")).to_contain_text("s")
    expect(page.locator("#gantt rect")).to_have_count(2)
    ticks = page.locator("#gantt .gantt-tick-label")  # a time axis: 0 s ... about 1.5 s
    expect(ticks.first).to_have_text(re.compile(r"^0(\.0+)? s$"))
    assert 3 <= ticks.count() <= 9
    expect(page.locator("#log")).to_contain_text("slept")
    assert page.evaluate("window.__notReloaded") is True  # the page never reloaded

    # A dropped message (a gap in seq) makes the page re-sync from the stored events over HTTP.
    last = page.evaluate("window.pipedeckRun.lastSeq")
    gap = {
        "seq": last + 2,
        "kind": "step_log",
        "ts": 0,
        "pipeline": "orders",
        "phase": "extract",
        "step": "wait",
        "level": "INFO",
        "message": "after the gap",
    }
    with page.expect_request(re.compile(rf".*/runs/\d+/events/\?after={last}$")):
        page.evaluate("(gap) => window.pipedeckRun.receive([gap])", gap)
    expect(page.locator("#log")).to_contain_text("after the gap")

    page.click('.run-step[data-step="sink"]')  # the log pane shows only that step's lines
    expect(page.locator("#log-filter")).to_contain_text("orders.load.sink")
    expect(page.locator("#log .log-line:not([hidden])")).to_have_count(0)
    page.click('.run-step[data-step="wait"]')
    expect(page.locator("#log .log-line:not([hidden])")).to_have_count(2)
    page.click("#log-show-all")
    expect(page.locator("#log-filter")).to_be_hidden()
    expect(page.locator('.run-step[data-step="wait"]')).not_to_have_class(re.compile("selected"))
    page.screenshot(path=str(artifacts_dir / "run-detail.png"), full_page=True)

    page.goto(f"{live_server_url}/p/lab/demo/orders/")  # the editor marks the step's latest state
    expect(page.locator('.step[data-id="wait"] [data-step-state]')).to_have_attribute(
        "data-step-state", "succeeded"
    )
    assert [u for u in missing if not u.endswith("favicon.ico")] == []


def test_cancel_stops_a_long_run(logged_in_page: Page, live_server_url, browser_user):
    make_pipeline(browser_user["project"], "slow", spec=sleep_spec(60))
    page = logged_in_page
    start_from_editor(page, live_server_url, "slow")
    expect(page.locator('.run-step[data-step="wait"]')).to_have_attribute(
        "data-state", "running", timeout=10_000
    )
    page.click("#cancel-run")
    expect(page.locator("#run-state")).to_have_attribute("data-state", "cancelled", timeout=5_000)
    expect(page.locator('.run-step[data-step="wait"]')).to_have_attribute("data-state", "cancelled")
    expect(page.locator("#cancel-run")).to_be_hidden()
    expect(page.locator("#retry-form")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True


def test_the_dashboard_shows_new_runs_without_reload(logged_in_page: Page, live_server_url, browser_user):
    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(0.2))
    page = logged_in_page
    page.goto(f"{live_server_url}/t/lab/runs/")
    page.wait_for_function("() => document.body.dataset.runsLive === '1'")
    page.evaluate("window.__notReloaded = true")
    other = page.context.new_page()
    other.goto(f"{live_server_url}/p/lab/demo/orders/")
    other.click("[data-testid=run-button]")
    other.wait_for_url(re.compile(r".*/runs/\d+/$"))
    run_id = other.url.rstrip("/").rsplit("/", 1)[1]
    row = page.locator(f'#run-rows tr[data-run="{run_id}"]')
    expect(row).to_have_attribute("data-state", "succeeded")
    # the row the server rendered (runs/_run_row.html), as the page's own rows are
    expect(row.locator("td").nth(0).locator("a")).to_have_attribute("href", f"/runs/{run_id}/")
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row.locator(".badge")).to_have_class("badge state-succeeded")
    expect(row.locator("td.duration")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(page.locator("#run-rows tr")).to_have_count(1)  # swapped in place: no duplicate row
    assert page.evaluate("window.__notReloaded") is True


def test_the_dashboard_runs_one_pipeline_chosen_among_the_projects_pipelines(
    logged_in_page: Page, live_server_url, browser_user
):
    from designer.runs.models import Run
    from tests.factory import make_project

    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(0))
    make_pipeline(browser_user["project"], "customers", spec=sleep_spec(0))
    make_pipeline(make_project(browser_user["team"], "Other", slug="other"), "elsewhere", spec=sleep_spec(0))
    page = logged_in_page
    page.goto(f"{live_server_url}/t/lab/runs/")

    page.select_option("#run-project", "demo")
    visible = page.locator("#run-pipeline option:not([hidden])")
    expect(visible).to_have_text(["all its pipelines", "customers", "orders"])
    page.select_option("#run-project", "other")
    expect(visible).to_have_text(["all its pipelines", "elsewhere"])
    page.select_option("#run-project", "demo")
    page.select_option("#run-pipeline", "orders")
    page.click("#dashboard-run-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))

    run = Run.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert (run.project.slug, run.pipelines) == ("demo", ["orders"])


def test_the_editor_follows_a_run_of_its_pipeline_started_elsewhere(
    logged_in_page: Page, live_server_url, browser_user
):
    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(1.0))
    editor = logged_in_page
    editor.goto(f"{live_server_url}/p/lab/demo/orders/")
    editor.wait_for_function("() => document.getElementById('run-states').dataset.live === '1'")
    editor.evaluate("window.__notReloaded = true")

    other = editor.context.new_page()  # a teammate (or another tab) starts the run
    other.goto(f"{live_server_url}/p/lab/demo/orders/")
    other.click("[data-testid=run-button]")

    wait = editor.locator('.step[data-id="wait"] [data-step-state]')
    expect(wait).to_have_attribute("data-step-state", "running", timeout=10_000)
    expect(editor.locator('.step[data-id="sink"] [data-step-state]')).to_have_attribute(
        "data-step-state", "queued"
    )
    expect(wait).to_have_attribute("data-step-state", "succeeded", timeout=10_000)
    expect(editor.locator('.step[data-id="sink"] [data-step-state]')).to_have_attribute(
        "data-step-state", "succeeded"
    )
    assert editor.evaluate("window.__notReloaded") is True


def test_an_editor_opened_during_a_run_follows_it(logged_in_page: Page, live_server_url, browser_user):
    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(2.0))
    page = logged_in_page
    start_from_editor(page, live_server_url, "orders")
    expect(page.locator('.run-step[data-step="wait"]')).to_have_attribute(
        "data-state", "running", timeout=10_000
    )

    page.goto(f"{live_server_url}/p/lab/demo/orders/")  # back to the editor while the run goes on
    wait = page.locator('.step[data-id="wait"] [data-step-state]')
    expect(wait).to_have_attribute("data-step-state", "running")
    expect(wait).to_have_attribute("data-step-state", "succeeded", timeout=10_000)


def test_the_run_page_catches_up_after_its_websocket_is_dropped(
    logged_in_page: Page, live_server_url, browser_user
):
    from designer.runs.models import Run, RunEvent

    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(1.0, load_seconds=0.5))
    page = logged_in_page
    record_sockets(page)
    start_from_editor(page, live_server_url, "orders")
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.locator('.run-step[data-step="wait"]')).to_have_attribute("data-state", "running")

    # Cut the socket as a network fault would; it comes back after the run has finished.
    seen = page.evaluate("() => { window.pipedeckRun.drop(2500); return window.pipedeckRun.lastSeq; }")
    expect(page.locator("#run")).to_have_attribute("data-connected", "0")
    expect(page.locator("#run")).to_have_attribute("data-connected", "1", timeout=10_000)

    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=10_000)
    for step in ("wait", "sink"):
        expect(page.locator(f'.run-step[data-step="{step}"]')).to_have_attribute("data-state", "succeeded")
    run = Run.objects.get(pk=run_id)
    assert run.last_seq > seen  # events happened while the socket was down...
    assert run_sockets(page)[-1] == (
        run_id,
        seen,
    )  # ...and the new socket asked for those after the last seen
    assert page.evaluate("() => window.pipedeckRun.lastSeq") == run.last_seq
    logged = RunEvent.objects.filter(run=run, kind="step_log").count()
    expect(page.locator("#log .log-line")).to_have_count(logged)  # every line once
    expect(page.locator("#log")).to_contain_text("slept")
    assert page.evaluate("window.__notReloaded") is True


def test_the_editor_catches_up_after_its_run_socket_is_dropped(
    logged_in_page: Page, live_server_url, browser_user
):
    make_pipeline(browser_user["project"], "orders", spec=sleep_spec(1.0, load_seconds=0.5))
    editor = logged_in_page
    record_sockets(editor)
    editor.goto(f"{live_server_url}/p/lab/demo/orders/")
    editor.wait_for_function("() => document.getElementById('run-states').dataset.live === '1'")
    other = editor.context.new_page()
    other.goto(f"{live_server_url}/p/lab/demo/orders/")
    other.click("[data-testid=run-button]")
    other.wait_for_url(re.compile(r".*/runs/\d+/$"))
    run_id = int(other.url.rstrip("/").rsplit("/", 1)[1])
    other.close()

    wait = editor.locator('.step[data-id="wait"] [data-step-state]')
    sink = editor.locator('.step[data-id="sink"] [data-step-state]')
    expect(wait).to_have_attribute("data-step-state", "running", timeout=10_000)
    seen = editor.evaluate(
        """() => { const [socket] = window.pipedeckRunSockets; socket.drop(2500); return socket.lastSeq; }"""
    )
    expect(wait).to_have_attribute("data-step-state", "succeeded", timeout=10_000)
    expect(sink).to_have_attribute("data-step-state", "succeeded")
    assert run_sockets(editor)[-1] == (run_id, seen)  # replayed from the last event seen
    expect(editor.locator("#run-states")).to_have_attribute("data-following", "")  # done: socket closed
