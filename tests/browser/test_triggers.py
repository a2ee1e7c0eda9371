"""Triggers in a real Chromium against a live Daphne: a schedule made in the UI with its next fire times,
paused; the demo's Run form with its date parameter, run to the end."""

from __future__ import annotations

import os
import re
import threading

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from designer.runs.models import Run
from designer.teams.models import Team
from designer.triggers.models import Schedule
from tests.factory import add_member, make_pipeline

pytestmark = pytest.mark.browser


def seed_demo_in_a_thread() -> None:
    """``manage.py seed_demo`` off the test's thread (Playwright's event loop runs there: what the command
    publishes through ``async_to_sync`` cannot)."""
    from django.db import connections

    failed: list[BaseException] = []

    def seed() -> None:
        try:
            call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            failed.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=seed)
    thread.start()
    thread.join(60)
    if failed:
        raise failed[0]


def script_errors(page: Page) -> list[str]:
    """What the page's scripts reported (a 400 or the favicon's 404 is the browser's own message)."""
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]  # type: ignore[attr-defined]


def test_a_schedule_made_in_the_ui_shows_its_next_fire_times_and_pauses(
    logged_in_page: Page, live_server_url, browser_user
):
    make_pipeline(browser_user["project"], "orders")
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/")
    page.click("#project-triggers-link")
    page.click("#new-schedule")
    page.fill("#id_name", "nightly")
    page.select_option("#id_timezone", "Europe/Paris")
    page.fill("#id_cron", "30 2 * * 1-5")
    expect(page.locator("#preview-reading")).to_contain_text("At 02:30 on Monday through Friday")
    expect(page.locator("#preview-reading")).to_contain_text("Europe/Paris")
    times = page.locator("#preview-times li")
    expect(times).to_have_count(5)
    expect(times.first).to_contain_text(re.compile(r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 02:30 CES?T"))
    page.fill("#id_cron", "61 2 * * *")
    expect(page.locator("#preview-problem")).to_contain_text("Bad minute")
    page.fill("#id_cron", "30 2 * * 1-5")
    expect(page.locator("#preview-times li")).to_have_count(5)
    page.click("#schedule-save")
    page.wait_for_url(re.compile(r".*/-/triggers/schedules/\d+/$"))
    expect(page.locator("#preview-times li")).to_have_count(5)
    page.click("#schedule-pause")
    expect(page.locator("#schedule-paused")).to_be_visible()
    expect(page.locator("#schedule-pause")).to_have_text("Resume")
    expect(page.locator("#preview-times li")).to_have_count(5)  # what it would do once resumed
    schedule = Schedule.objects.get()
    assert schedule.paused and schedule.next_fire_at is None and schedule.timezone == "Europe/Paris"
    page.goto(f"{live_server_url}/t/lab/runs/")
    row = page.locator('#schedule-list tr[data-schedule="nightly"]')
    expect(row).to_have_attribute("data-paused", "1")
    assert script_errors(page) == []


def test_the_demos_run_form_asks_for_its_date_and_runs(
    logged_in_page: Page, live_server_url, browser_user, settings
):
    settings.PIPEDECK_DATA_ROOT = os.environ["PIPEDECK_DATA_ROOT"]  # the live server's: files go there
    seed_demo_in_a_thread()
    add_member(Team.objects.get(slug="demo"), browser_user["user"], "owner")
    page = logged_in_page
    page.goto(f"{live_server_url}/p/demo/orders-demo/")
    page.click("a.run-with")
    expect(page.locator('label[for="arg-day"]')).to_contain_text("day")
    expect(page.locator('[data-field="day"] .help')).to_have_text("The business day this run is for")
    expect(page.locator("#arg-orders_min")).to_have_value("10")
    page.fill("#arg-day", "1 Nov")
    page.click("#run-submit")
    expect(page.locator('[data-field="day"] .field-error')).to_contain_text("expected a date like 2026-11-01")
    page.fill("#arg-day", "2026-11-01")
    page.click("#run-submit")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=60_000)
    run = Run.objects.get(project__slug="orders-demo")
    assert run.variables == {"day": "2026-11-01", "orders_min": 10}
    assert script_errors(page) == []
