"""The Content-Security-Policy in a real Chromium: every page, driven as a user would (drag and drop in the
editor, the project graph, a live run, the dashboard), runs without one violation. ``logged_in_page``
collects them (tests/browser/conftest.py, ``watch_csp``) and fails any browser test that causes one."""

from __future__ import annotations

import copy
import re

import pytest
from playwright.sync_api import Page, expect

from tests.factory import SLEEP_SPEC, make_pipeline

pytestmark = pytest.mark.browser


def _policy(page: Page, url: str) -> str:
    response = page.goto(url)
    assert response is not None
    return response.headers["content-security-policy"]


def test_the_watcher_sees_a_violation(logged_in_page: Page, live_server_url):
    page = logged_in_page
    page.goto(f"{live_server_url}/")
    page.evaluate("() => document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">inline</p>')")
    expect(page.locator("p", has_text="inline")).to_have_count(1)
    page.wait_for_timeout(200)  # the report is asynchronous
    assert any("style-src" in v for v in page.csp_violations)  # type: ignore[attr-defined]
    page.csp_violations.clear()  # type: ignore[attr-defined]


def test_every_page_runs_under_the_policy_without_a_violation(
    logged_in_page: Page, live_server_url, browser_user
):
    project = browser_user["project"]
    make_pipeline(project, "a")
    make_pipeline(project, "b", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["a"]})
    page = logged_in_page
    base = live_server_url

    for path in ["/", "/teams/", "/t/lab/library/", "/t/lab/settings/", "/t/lab/activity/"]:
        policy = _policy(page, base + path)
        assert re.search(r"script-src 'self' 'nonce-[^']+'", policy) and "unsafe" not in policy, path

    # the project page: Cytoscape draws the graph (its stylesheet is a file); htmx swaps the graph section
    _policy(page, f"{base}/p/lab/demo/")
    page.wait_for_function("() => window.pipedeckGraph && pipedeckGraph.nodes().length === 2")
    page.select_option("#needs-form select[name=pipeline]", "a")
    page.select_option("#needs-form select[name=needs]", "b")
    page.click("#needs-form button")
    expect(page.locator("#graph-error")).to_contain_text("cycle")

    # the editor: SortableJS drag and drop, htmx swaps of the canvas, the step form
    _policy(page, f"{base}/p/lab/demo/a/")
    page.locator(".palette .plugin[data-plugin=filter_rows]").drag_to(page.locator("#steps-transform-steps"))
    expect(page.locator("#steps-transform-steps .step:not(.pending)")).to_have_count(1)
    expect(page.locator("#step-form")).to_be_visible()
    page.locator("#steps-transform-steps .step .step-remove").click()
    expect(page.locator("#steps-transform-steps .step")).to_have_count(0)

    # a run, live, then the dashboard
    page.goto(f"{base}/p/lab/demo/b/")
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=15_000)
    _policy(page, f"{base}/t/lab/runs/")
    page.wait_for_function("() => document.body.dataset.runsLive === '1'")
    page.select_option(".filters select[name=state]", "succeeded")
    expect(page.locator("#run-rows tr[data-run]")).to_have_count(1)

    # an error page
    response = page.goto(f"{base}/no/such/page/")
    assert response is not None and response.status == 404
    expect(page.locator("[data-status='404']")).to_be_visible()
    assert page.csp_violations == []  # type: ignore[attr-defined]
