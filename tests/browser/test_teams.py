"""Teams in a real Chromium: an owner invites an editor, who finds a template in the library, uses it and runs
it; a viewer sees the run but gets no Run button."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.factory import make_pipeline, make_user

pytestmark = pytest.mark.browser
PASSWORD = "team-pw-1"


def _log_in(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _invite(owner: Page, base: str, identifier: str, username: str, role: str) -> None:
    owner.goto(f"{base}/t/lab/settings/")
    members = owner.locator("#members")
    members.get_by_label("Username or e-mail").fill(identifier)
    members.get_by_label("Role", exact=True).select_option(role)
    members.get_by_role("button", name="Add member").click()
    expect(owner.locator("#members")).to_contain_text(f"{username} added as {role}.")
    expect(owner.locator(f'#members tr[data-member="{username}"]')).to_be_visible()


def test_owner_invites_editor_who_uses_a_template_and_runs_it_viewer_cannot_run(
    logged_in_page: Page, live_server_url: str, browser: Browser, browser_user: dict[str, Any], artifacts_dir
):
    base = live_server_url
    make_pipeline(browser_user["project"], "nightly", is_template=True, description="Nightly load template")
    make_pipeline(browser_user["project"], "orders")
    make_user("eve", password=PASSWORD, email="eve@lab.test")
    make_user("vic", password=PASSWORD)

    owner = logged_in_page
    _invite(owner, base, "eve@lab.test", "eve", "editor")  # by e-mail
    _invite(owner, base, "vic", "vic", "viewer")  # by username
    owner.screenshot(path=str(artifacts_dir / "teams-settings.png"), full_page=True)

    # the editor switches to the team, searches the library and uses the template
    editor = _log_in(browser, base, "eve")
    editor.locator("[data-testid=team-switcher] summary").click()
    editor.locator("[data-testid=team-switcher] a", has_text="Lab").click()
    editor.wait_for_url(f"{base}/t/lab/library/")
    editor.get_by_label("Search").fill("night")
    rows = editor.locator("#library-pipelines tr[data-pipeline]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("template")
    editor.screenshot(path=str(artifacts_dir / "teams-library.png"), full_page=True)
    rows.first.get_by_role("link", name="Use template").click()
    editor.get_by_role("button", name="Create pipeline from template").click()
    editor.wait_for_url(f"{base}/p/lab/demo/nightly_2/")

    # ... and runs it
    editor.get_by_test_id("run-button").click()
    editor.wait_for_url(re.compile(r".*/runs/\d+/$"))
    run_url = editor.url
    expect(editor.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    editor.screenshot(path=str(artifacts_dir / "teams-editor-run.png"))

    # the viewer sees the run, but no way to start one
    viewer = _log_in(browser, base, "vic")
    viewer.goto(run_url)
    expect(viewer.locator('.run-pipeline[data-pipeline="nightly_2"]')).to_be_visible()
    expect(viewer.locator("#run-state")).to_have_attribute("data-state", "succeeded")
    expect(viewer.locator("#rerun")).to_have_count(0)
    viewer.goto(f"{base}/p/lab/demo/nightly_2/")
    expect(viewer.get_by_test_id("run-button")).to_have_count(0)
    viewer.goto(f"{base}/t/lab/library/")
    expect(viewer.get_by_role("link", name="Use template")).to_have_count(0)

    # the feed tells who did what
    owner.goto(f"{base}/t/lab/activity/")
    expect(owner.locator("#activity-feed")).to_contain_text("eve created from a template")
    expect(owner.locator("#activity-feed")).to_contain_text("ada added member")
