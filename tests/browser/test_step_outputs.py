"""Seeing the data in a real Chromium against a live Daphne (its embedded worker, real run processes): a
step's preview in the editor, its columns offered to the next step, a run's step outputs, and Resume."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factory import add_member, make_pipeline

pytestmark = pytest.mark.browser


def demo(settings, user) -> None:  # type: ignore[no-untyped-def]
    """The demo team and project (``manage.py seed_demo``), its files in the live server's data root."""
    from django.core.management import call_command

    from designer.demo import build_source_db
    from designer.teams.models import Team

    settings.PIPEDECK_DATA_ROOT = os.environ["PIPEDECK_DATA_ROOT"]  # the live server's: files go there
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    build_source_db(Path(os.environ["PIPEDECK_DATA_ROOT"]).resolve() / "demo")
    add_member(Team.objects.get(slug="demo"), user, "owner")


def open_step(page: Page, phase: str, step_id: str) -> None:
    page.locator(f"#steps-{phase}-steps .step[data-id={step_id}] .step-open").click()
    expect(page.locator("#step-form input[name=id]")).to_have_value(step_id)


def test_preview_a_demo_step_then_its_columns_are_offered_to_the_next_one(
    logged_in_page: Page, live_server_url, browser_user, settings, artifacts_dir
):
    demo(settings, browser_user["user"])
    page = logged_in_page
    page.goto(f"{live_server_url}/p/demo/orders-demo/orders_etl/")
    open_step(page, "transform", "big_orders")
    expect(page.locator("#step-data [data-testid=column-picks]")).to_have_count(0)
    page.click("#step-preview")
    table = page.locator("#step-preview-result table.sample")
    expect(table).to_be_visible(timeout=10_000)
    headers = table.locator("thead th")
    expect(headers.filter(has_text="amount")).to_have_count(1)
    expect(headers.first.locator(".col-type")).not_to_be_empty()  # the type under the name
    expect(page.locator("#step-preview-result .output-rows")).to_have_text(re.compile(r"^\d+$"))
    assert int(page.locator("#step-preview-result .output-rows").inner_text()) > 0
    assert table.locator("tbody tr").count() > 0
    page.screenshot(path=str(artifacts_dir / "step-preview.png"), full_page=True)

    open_step(page, "transform", "by_country")  # reads big_orders' output: its columns are offered
    picks = page.locator('[data-field="by"] [data-testid=column-picks]')
    expect(picks.locator('.column-pick[data-column="segment"]')).to_be_visible()
    expect(page.locator("#input-columns")).to_contain_text("amount")
    page.fill("#arg-by", "country")
    picks.locator('.column-pick[data-column="segment"]').click()
    expect(page.locator("#arg-by")).to_have_value("country\nsegment")


def test_a_failed_run_resumes_from_its_failed_step_once_the_cause_is_fixed(
    logged_in_page: Page, live_server_url, browser_user, settings, artifacts_dir
):
    from designer.runs.isolation import team_data_root
    from designer.teams.secrets import set_secret

    settings.PIPEDECK_DATA_ROOT = os.environ["PIPEDECK_DATA_ROOT"]
    team = browser_user["team"]
    (team_data_root(team) / "orders.csv").write_text("id,amount\n1,5\n2,20\n3,30\n4,40\n")
    spec = {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "read", "plugin": "csv_extract", "args": {"path": "orders.csv"}}]},
            "transform": {"steps": [{"id": "big", "plugin": "filter_rows", "args": {"expr": "amount > 10"}}]},
            # the warehouse's DSN is a team secret nobody has set yet: the load fails
            "load": {
                "steps": [
                    {
                        "id": "store",
                        "plugin": "sql_load",
                        "args": {"dsn": "${{ secrets.WAREHOUSE }}", "table": "orders", "mode": "replace"},
                    }
                ]
            },
        },
    }
    make_pipeline(browser_user["project"], "orders", spec=spec)
    page = logged_in_page
    page.goto(f"{live_server_url}/p/lab/demo/orders/")
    page.click("[data-testid=run-button]")
    page.wait_for_url(re.compile(r".*/runs/\d+/$"))
    expect(page.locator("#run-state")).to_have_attribute("data-state", "failed", timeout=20_000)
    page.click('.run-step[data-step="store"]')  # the failed step: its error beside what it read
    panel = page.locator("#step-output")
    expect(panel.locator(".output-error")).to_contain_text("WAREHOUSE")
    expect(panel.locator(".output-input table.sample tbody tr")).to_have_count(3)
    page.click('.run-step[data-step="big"]')
    expect(panel.locator("table.sample thead th").first.locator(".col-name")).to_have_text("id")
    expect(panel.locator(".output-rows")).to_have_text("3")

    set_secret(team, "WAREHOUSE", "sqlite:///out/warehouse.sqlite3")  # the cause fixed
    failed_url = page.url
    page.click("#resume")
    page.wait_for_url(lambda url: url != failed_url and re.search(r"/runs/\d+/$", url) is not None)
    expect(page.locator("#run-state")).to_have_attribute("data-state", "succeeded", timeout=20_000)
    expect(page.locator('.run-step[data-step="read"]')).to_have_attribute("data-state", "reused")
    expect(page.locator('.run-step[data-step="read"] .step-state')).to_have_text("reused")
    expect(page.locator('.run-step[data-step="big"]')).to_have_attribute("data-state", "reused")
    expect(page.locator('.run-step[data-step="store"]')).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#run-resumed-from")).to_be_visible()
    page.click('.run-step[data-step="read"]')
    expect(page.locator("#step-output .badge.state-reused").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "run-resumed.png"), full_page=True)
