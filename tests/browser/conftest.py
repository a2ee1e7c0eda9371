"""Browser-test fixtures: a live Daphne (child process, same file SQLite test DB) and a logged-in page.

Others reuse ``live_server_url``, ``browser_user`` and ``logged_in_page``. See /work/shared/TESTING.md.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from daphne.testing import DaphneProcess
from playwright.sync_api import BrowserContext, ConsoleMessage

# Playwright's sync API runs an event loop in the test thread; the ORM must still work there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-pw"

#: every document of a watched context reports its Content-Security-Policy violations on the console
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} refused ${event.blockedURI || "inline code"}`
    + ` in ${event.sourceFile || document.location.pathname}:${event.lineNumber}`);
});
"""


def watch_csp(context: BrowserContext) -> list[str]:
    """The Content-Security-Policy violations of every page of ``context``, as they happen (the page's
    ``securitypolicyviolation`` events and Chromium's own "Refused to ..." messages)."""
    violations: list[str] = []
    context.add_init_script(_REPORT_CSP_VIOLATIONS)

    def seen(message: ConsoleMessage) -> None:
        if "CSP violation" in message.text or "Content Security Policy" in message.text:
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    context.on("console", seen)
    return violations


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test; skip them when Chromium is missing.

    They run last: Playwright's sync API leaves an event loop running in the main thread for the rest of
    the session, which breaks later tests that call ``asyncio.run`` / ``async_to_sync`` there.
    """
    items.sort(key=lambda item: "tests/browser/" in str(item.fspath).replace(os.sep, "/"))
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if not Path(CHROMIUM).exists():
                item.add_marker(
                    pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (apt install chromium)")
                )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, with no background networking (the network is closed here)."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _child_setup(test_db_name: str) -> None:
    """In the Daphne child: use the test database file, with fresh connections."""
    from django.conf import settings
    from django.db import connections

    settings.DATABASES["default"]["NAME"] = test_db_name
    for conn in connections.all(initialized_only=True):
        conn.close()
    connections["default"].settings_dict["NAME"] = test_db_name


def _spawned_application(test_db_name: str):  # type: ignore[no-untyped-def]
    """In the spawned Daphne child: set Django up on the test database, then build the ASGI app (with
    its in-process worker: the live server runs the runs its pages start)."""
    import django

    os.environ["PIPEDECK_INPROCESS_WORKER"] = "true"

    django.setup()
    _child_setup(test_db_name)
    from channels.testing.live import make_application

    return make_application(static_wrapper=None)  # designer.asgi serves static files itself


class SpawnedDaphneProcess(DaphneProcess):
    """A DaphneProcess started with "spawn", not "fork": by the time browser tests run, the test process
    has threads, and forking a multi-threaded process can deadlock the child (e.g. its run worker)."""

    def __init__(self, host: str, get_application) -> None:  # type: ignore[no-untyped-def]
        super().__init__(host, get_application)
        spawn = multiprocessing.get_context("spawn")
        self.port = spawn.Value("i", 0)
        self.ready = spawn.Event()
        self.errors = spawn.Queue()

    @staticmethod
    def _Popen(process_obj):  # type: ignore[no-untyped-def] # noqa: N802 - multiprocessing's name
        from multiprocessing.popen_spawn_posix import Popen

        return Popen(process_obj)


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A real Daphne serving the ASGI app (HTTP, websockets, static files) on a free port."""
    from django.db import connections

    with django_db_blocker.unblock():
        name = connections["default"].settings_dict["NAME"]
        if connections["default"].vendor == "sqlite" and str(name).startswith(("file:", ":memory:")):
            pytest.skip("browser tests need a file SQLite test database (DATABASES TEST NAME)")
        server = SpawnedDaphneProcess("127.0.0.1", partial(_spawned_application, str(name)))
        server.daemon = True
        server.start()
        while not server.ready.wait(timeout=1):
            if not server.is_alive():
                raise RuntimeError("the live Daphne server stopped while starting")
        try:
            yield f"http://127.0.0.1:{server.port.value}"
        finally:
            server.terminate()
            server.join(timeout=10)


@pytest.fixture
def browser_user(transactional_db):  # type: ignore[no-untyped-def]
    """User ``ada`` (password ``browser-pw``), owner of team ``lab`` with project ``demo``."""
    from tests.factory import add_member, make_project, make_team, make_user

    user = make_user("ada", password=PASSWORD)
    team = make_team("Lab", slug="lab")
    add_member(team, user, "owner")
    project = make_project(team, "Demo", slug="demo")
    return {"user": user, "team": team, "project": project, "password": PASSWORD}


@pytest.fixture
def logged_in_page(page, live_server_url, browser_user):  # type: ignore[no-untyped-def]
    """A Playwright page logged in as ``browser_user`` through Django's login form. Every page of its
    context is watched for Content-Security-Policy violations: a test that causes one fails."""
    page.set_default_timeout(15_000)
    page.csp_violations = watch_csp(page.context)  # type: ignore[attr-defined]
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,  # type: ignore[attr-defined]
    )
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", browser_user["user"].username)
    page.fill("input[name=password]", browser_user["password"])
    page.click("button[type=submit]")
    try:
        page.wait_for_url(f"{live_server_url}/", wait_until="domcontentloaded")
    except Exception as exc:  # say what the browser shows instead: a failed login, an error page...
        shown = page.locator("body").inner_text()[:800]
        raise AssertionError(f"login did not reach the home page; at {page.url}:\n{shown}") from exc
    yield page
    assert page.csp_violations == [], "Content-Security-Policy violations:\n" + "\n".join(page.csp_violations)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where browser tests save screenshots (test-artifacts/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
