"""Issue 12 in a real Chromium against a live Daphne: two editors on one pipeline (a stale change refused
with a diff, the other's change arriving live), undo and redo, the YAML tab keeping unapplied text, the
upload preview and merge, a template in a project run, the demo's Run buttons, an invitation link, and
the editor at 390 px wide."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, watch_csp
from tests.browser.test_editor import drop
from tests.factory import SLEEP_SPEC, add_member, make_pipeline, make_user

pytestmark = pytest.mark.browser


def second_editor(browser: Browser, base: str, username: str = "bo") -> Page:
    """Another person, logged in in their own browser context (CSP violations collected too)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_violations = watch_csp(context)  # type: ignore[attr-defined]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def editor_url(base: str, name: str) -> str:
    return f"{base}/p/lab/demo/{name}/"


def wait_live(page: Page) -> None:
    page.wait_for_function("() => document.getElementById('presence').dataset.live === '1'")


def test_two_editors_a_stale_yaml_is_refused_with_a_diff_and_changes_arrive_live(
    logged_in_page: Page, live_server_url: str, browser: Browser, browser_user: dict[str, Any], artifacts_dir
):
    make_pipeline(browser_user["project"], "orders")
    add_member(browser_user["team"], make_user("bo", password=PASSWORD), "editor")
    ada, base = logged_in_page, live_server_url
    bo = second_editor(browser, base)
    ada.goto(editor_url(base, "orders"))
    bo.goto(editor_url(base, "orders"))
    wait_live(ada)
    wait_live(bo)
    expect(ada.locator("#presence")).to_contain_text("bo")
    expect(bo.locator("#presence")).to_contain_text("ada")

    # bo starts editing the YAML (not applied yet)
    bo.click("#yaml-tab")
    expect(bo.locator("#yaml-text")).to_have_value(re.compile("plugin: sleep_load"))
    bo.fill("#yaml-text", bo.locator("#yaml-text").input_value().replace("seconds: 0.01", "seconds: 0.5", 1))

    # ada removes a step: bo's lanes follow live, without a reload, and say who did what
    bo.evaluate("window.__notReloaded = true")
    ada.click('#steps-load-steps .step[data-id="sink"] .step-remove')
    expect(ada.locator("#steps-load-steps .step")).to_have_count(0)
    expect(bo.locator("#steps-load-steps .step")).to_have_count(0)
    expect(bo.locator("#notice")).to_contain_text("ada changed this pipeline: Remove sink")
    assert bo.evaluate("window.__notReloaded") is True

    # bo's YAML was made before that change: applying it is refused, with what changed, and nothing reverts
    bo.click("#yaml-apply")
    expect(bo.locator("#yaml-conflict")).to_contain_text(
        "Not applied: ada changed this pipeline since you loaded it"
    )
    expect(bo.locator("#conflict .diff")).to_contain_text("sink")
    expect(bo.locator("#yaml-text")).to_have_value(re.compile("seconds: 0.5"))  # bo's text is kept
    bo.screenshot(path=str(artifacts_dir / "editing-conflict.png"), full_page=True)
    ada.reload()
    expect(ada.locator("#steps-load-steps .step")).to_have_count(0)
    expect(ada.locator('#steps-extract-steps .step[data-id="wait"] .step-summary')).to_have_text(
        "seconds: 0.01"
    )
    assert bo.csp_violations == []  # type: ignore[attr-defined]


def test_undo_and_redo_of_add_move_delete_and_arguments(
    logged_in_page: Page, live_server_url: str, browser_user
):
    make_pipeline(browser_user["project"], "nightly")
    page = logged_in_page
    page.goto(editor_url(live_server_url, "nightly"))
    transform = page.locator("#steps-transform-steps .step")

    drop(page, "filter_rows", "transform")  # add
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # not in a text field
    page.keyboard.press("Control+z")
    expect(transform).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(transform).to_have_count(1)

    drop(page, "sort_rows", "transform")
    expect(transform.nth(1)).to_have_attribute("data-id", "sort_rows")
    transform.nth(1).drag_to(transform.nth(0), target_position={"x": 5, "y": 5})  # move
    expect(transform.first).to_have_attribute("data-id", "sort_rows")
    expect(page.locator("#undo-button")).to_have_attribute("title", re.compile("Undo: Move sort_rows"))
    page.click("#undo-button")
    expect(transform.first).to_have_attribute("data-id", "filter_rows")

    page.locator('#steps-transform-steps .step[data-id="filter_rows"] .step-open').click()  # arguments
    page.fill("#arg-expr", "amount > 10")
    page.click("#step-apply")
    expect(page.locator('#steps-transform-steps .step[data-id="filter_rows"] .step-summary')).to_have_text(
        "expr: amount > 10"
    )
    page.click("#undo-button")
    expect(page.locator('#steps-transform-steps .step[data-id="filter_rows"] .step-summary')).to_have_count(0)
    expect(page.locator("#arg-expr")).to_have_value("")  # the open form follows the undo
    page.click("#redo-button")
    expect(page.locator("#arg-expr")).to_have_value("amount > 10")

    page.locator('#steps-transform-steps .step[data-id="filter_rows"] .step-remove').click()  # delete
    expect(transform).to_have_count(1)
    expect(page.locator("#notice")).to_contain_text("Removed filter_rows: Undo (Ctrl+Z) brings it back.")
    page.click("#undo-button")
    expect(page.locator('#steps-transform-steps .step[data-id="filter_rows"]')).to_have_count(1)
    expect(page.locator("#unsaved")).to_be_visible()
    page.click("#discard-button")  # back to version 1
    expect(transform).to_have_count(0)
    expect(page.locator("#unsaved")).to_have_count(0)


def test_unapplied_yaml_text_survives_a_tab_switch_and_a_reload(
    logged_in_page: Page, live_server_url, browser_user
):
    make_pipeline(browser_user["project"], "nightly")
    page = logged_in_page
    page.goto(editor_url(live_server_url, "nightly"))
    page.click("#yaml-tab")
    text = page.locator("#yaml-text").input_value()
    edited = text.replace("seconds: 0.01", "seconds: 0.25", 1)
    page.fill("#yaml-text", edited)
    page.click(".tab[data-tab=design]")
    page.click("#yaml-tab")
    expect(page.locator("#yaml-text")).to_have_value(edited)
    expect(page.locator("#yaml-restored")).to_be_visible()
    page.reload()
    page.click("#yaml-tab")
    expect(page.locator("#yaml-text")).to_have_value(edited)
    page.click("#yaml-apply")
    expect(page.locator("#yaml-applied")).to_have_text("YAML applied.")
    page.reload()
    page.click("#yaml-tab")
    expect(page.locator("#yaml-text")).to_have_value(re.compile("seconds: 0.25"))
    expect(page.locator("#yaml-restored")).to_be_hidden()
    # the tab shows needs, as the download does
    make_pipeline(browser_user["project"], "after", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["nightly"]})
    page.goto(editor_url(live_server_url, "after"))
    page.click("#yaml-tab")
    expect(page.locator("#yaml-text")).to_have_value(re.compile(r"needs:\n\s+- nightly"))


def test_an_upload_is_previewed_then_merged(
    logged_in_page: Page, live_server_url, browser_user, tmp_path: Path
):
    project = browser_user["project"]
    project.variables = {"KEEP": "kept"}
    project.save()
    make_pipeline(project, "a")
    upload = tmp_path / "more.yaml"
    upload.write_text(
        "variables:\n  OUT: out/b.csv\n---\npipelines:\n  b:\n    type: ETL\n    needs: [a]\n    phases:\n"
        "      extract: {steps: [{id: w, plugin: sleep_extract}]}\n"
        "      load: {steps: [{id: s, plugin: csv_load, args: {path: '${{ variables.OUT }}'}}]}\n"
    )
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload-button")
    preview = page.locator("#upload-preview")
    expect(preview.locator('[data-pipeline="b"][data-change="added"]')).to_be_visible()
    expect(preview.locator('[data-variable="OUT"][data-change="added"]')).to_be_visible()
    expect(page.locator("#upload-kept")).to_contain_text("variables KEEP")
    expect(page.locator("#pipeline-table")).not_to_contain_text("b")
    page.click("#upload-apply")
    page.wait_for_load_state("domcontentloaded")
    expect(page.locator(".messages")).to_contain_text("Imported more.yaml: created b")
    expect(page.locator("#pipeline-table tr", has_text="b").locator("td").nth(2)).to_have_text("a")
    project.refresh_from_db()
    assert project.variables == {"KEEP": "kept", "OUT": "out/b.csv"}


def test_a_template_runs_in_a_project_run(logged_in_page: Page, live_server_url, browser_user):
    make_pipeline(browser_user["project"], "base", is_template=True)
    make_pipeline(browser_user["project"], "report", spec={**copy.deepcopy(SLEEP_SPEC), "needs": ["base"]})
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    for name in ("base", "report"):
        expect(page.locator(f'.run-pipeline[data-pipeline="{name}"]')).to_have_attribute(
            "data-state", "succeeded"
        )
    page.goto(editor_url(live_server_url, "base"))  # and its own Run button runs it
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=30_000)


def test_every_run_button_of_the_demo_ends_succeeded(logged_in_page: Page, live_server_url, browser_user):
    from django.core.management import call_command

    from designer.demo import build_source_db
    from designer.teams.models import Team

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # the live server's data root (the test process may have read its settings before it was set)
    build_source_db(Path(os.environ["PIPEDECK_DATA_ROOT"]).resolve() / "demo")
    add_member(Team.objects.get(slug="demo"), browser_user["user"], "owner")
    page = logged_in_page
    # customers_etlt first: on a fresh demo its upstream orders_elt never ran, so it runs first
    for name in ("customers_etlt", "orders_elt", "orders_etl"):
        page.goto(f"{live_server_url}/p/demo/orders-demo/{name}/")
        if name == "customers_etlt":
            expect(page.locator("#run-upstream")).to_be_checked()
        page.click("[data-testid=run-button]")
        page.wait_for_url(re.compile(r".*/(runs/\d+|-/run-with)/.*"))
        if "/-/run-with/" in page.url:  # the demo's required run parameter
            page.fill("#arg-day", "2026-11-02")
            page.click("#run-submit")
            page.wait_for_url(re.compile(r".*/runs/\d+/$"))
        state = page.locator("#run-state")
        expect(state).to_have_attribute(
            "data-state", re.compile("succeeded|failed|cancelled"), timeout=60_000
        )
        errors = [page.locator("#run-error").inner_text(), *page.locator(".pl-error").all_inner_texts()]
        assert state.get_attribute("data-state") == "succeeded", f"{name}: {errors}"
        if name == "customers_etlt":
            expect(page.locator('.run-pipeline[data-pipeline="orders_elt"]')).to_have_attribute(
                "data-state", "succeeded"
            )


def test_an_invitation_link_lets_a_second_person_in(
    logged_in_page: Page, live_server_url: str, browser: Browser, artifacts_dir
):
    owner, base = logged_in_page, live_server_url
    owner.goto(f"{base}/t/lab/settings/")
    owner.get_by_label("E-mail to invite").fill("newbie@lab.test")
    owner.get_by_label("Role of the invited person").select_option("editor")
    owner.get_by_role("button", name="Invite").click()
    link = owner.locator("#invitation-link code").inner_text()
    assert re.fullmatch(rf"{base}/accounts/invitations/[\w-]+/", link)
    expect(owner.locator('#invitations tr[data-invitation="newbie@lab.test"]')).to_be_visible()

    context = browser.new_context()
    newbie = context.new_page()
    violations = watch_csp(context)
    newbie.goto(link)
    expect(newbie.locator("#invitation")).to_contain_text("as editor")
    newbie.fill("#id_username", "newbie")
    newbie.fill("#id_password1", "a-Long-pass-42")
    newbie.fill("#id_password2", "a-Long-pass-42")
    newbie.click("#signup-submit")
    newbie.wait_for_url(f"{base}/t/lab/library/")
    expect(newbie.locator(".messages")).to_contain_text("Welcome to Lab: you are editor.")
    newbie.goto(f"{base}/")
    expect(newbie.locator("main")).to_contain_text("Lab")
    newbie.screenshot(path=str(artifacts_dir / "invited.png"), full_page=True)
    assert violations == []


def test_the_editor_is_usable_390_px_wide(logged_in_page: Page, live_server_url, browser_user):
    make_pipeline(browser_user["project"], "nightly")
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(editor_url(live_server_url, "nightly"))
    expect(page.locator("#palette")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#palette-toggle")
    expect(page.locator("#palette")).to_be_visible()
    expect(page.locator('.palette .plugin[data-plugin="filter_rows"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#palette-toggle")
    expect(page.locator("#palette")).to_be_hidden()
    page.locator('#steps-load-steps .step[data-id="sink"] .step-open').click()
    expect(page.locator("#step-form")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
