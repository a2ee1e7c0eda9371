"""Every page under an enforcing Content-Security-Policy (nonces, no inline code), htmx configured for it,
and the 404 / 403 / 500 pages styled like the app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.views import defaults
from django.views.csrf import csrf_failure

from designer.runs.launch import start_run
from tests.factory import make_pipeline

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SCRIPTS = ROOT / "static"


def _directives(header: str) -> dict[str, list[str]]:
    return {parts[0]: parts[1:] for parts in (item.split() for item in header.split(";") if item.strip())}


def _pages(project, alice) -> list[str]:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(project, "orders")
    run = start_run(project, alice)
    team, slug = project.team.slug, project.slug
    return [
        "/",
        "/teams/",
        f"/p/{team}/{slug}/",
        f"/p/{team}/{slug}/-/variables/",
        pipeline.editor_url(),
        f"/t/{team}/runs/",
        f"/runs/{run.pk}/",
        f"/t/{team}/library/",
        f"/t/{team}/settings/",
        f"/t/{team}/activity/",
        f"/p/{team}/{slug}/orders/copy/",
    ]


def test_every_page_is_sent_with_an_enforcing_policy_and_a_nonce_its_scripts_carry(
    project, alice, alice_client
):
    for url in _pages(project, alice):
        response = alice_client.get(url)
        assert response.status_code == 200, url
        header = response["Content-Security-Policy"]
        policy = _directives(header)
        for directive in ("script-src", "style-src"):
            assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive]
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"], header
        nonces = re.findall(r"'nonce-([^']+)'", " ".join(policy["script-src"]))
        assert len(nonces) == 1, (url, header)
        body = response.content.decode()
        assert f'nonce="{nonces[0]}"' in body, url  # htmx's script tag carries this request's nonce
        assert "Content-Security-Policy-Report-Only" not in response


def test_the_nonce_changes_with_every_request(alice_client):
    first, second = (alice_client.get("/")["Content-Security-Policy"] for _ in range(2))
    assert re.search(r"'nonce-[^']+'", first) and first != second


def test_htmx_partials_and_the_login_page_are_sent_with_the_policy_too(project, alice, alice_client, client):
    make_pipeline(project, "orders")
    partial = alice_client.get(f"/t/{project.team.slug}/runs/", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content
    assert "'unsafe-inline'" not in partial["Content-Security-Policy"]
    login = client.get("/accounts/login/")
    assert "'nonce-" in login["Content-Security-Policy"]


def test_htmx_runs_without_eval_injected_styles_or_requests_to_other_sites(alice_client):
    body = alice_client.get("/").content.decode()
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", body)
    assert meta is not None
    config = json.loads(meta.group(1))
    assert config["allowEval"] is False and config["includeIndicatorStyles"] is False
    assert config["selfRequestsOnly"] is True
    assert "hx-ws" not in body  # the websocket extension is not loaded (run_socket.js follows runs)


def test_no_template_holds_inline_styles_handlers_or_scripts_without_the_nonce():
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        name = path.relative_to(TEMPLATES)
        for pattern, what in [
            (r"\sstyle\s*=", "a style= attribute"),
            (r"<style[\s>]", "a <style> element"),
            (r"\son[a-z]+\s*=\s*[\"']", "an inline event handler"),
            (r"\shx-on[:-]", "an hx-on handler (needs eval)"),
            (r"javascript:", "a javascript: URL"),
        ]:
            if re.search(pattern, text, re.IGNORECASE):
                problems.append(f"{name}: {what}")
        for tag in re.findall(r"<script\b[^>]*>", text, re.IGNORECASE):
            if "src=" not in tag and "nonce=" not in tag:
                problems.append(f"{name}: an inline script without the nonce: {tag}")
    assert problems == []


def test_our_scripts_write_no_inline_styles_and_evaluate_no_code():
    problems = []
    for path in sorted(SCRIPTS.rglob("*.js")):
        if "vendor" in path.parts:
            continue
        text = path.read_text()
        for pattern in (r"style=", r"setAttribute\(\s*[\"']style", r"\beval\(", r"new Function\("):
            if re.search(pattern, text):
                problems.append(f"{path.relative_to(SCRIPTS)}: {pattern}")
    assert problems == []


def test_the_websocket_is_allowed_by_connect_src_self():
    assert settings.SECURE_CSP["connect-src"] == ["'self'"]  # CSP 3: 'self' matches ws:/wss: of the host


def test_unknown_addresses_get_the_apps_404_page(alice_client):
    response = alice_client.get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert 'class="topbar"' in body and 'data-status="404"' in body and "Page not found" in body
    assert "'nonce-" in response["Content-Security-Policy"]


def test_the_403_page_is_the_apps():
    request = RequestFactory().get("/")
    response = defaults.permission_denied(request, PermissionDenied())
    body = response.content.decode()
    assert response.status_code == 403 and 'class="topbar"' in body and 'data-status="403"' in body


def test_a_refused_csrf_check_gets_the_apps_page():
    response = csrf_failure(RequestFactory().post("/"), reason="CSRF cookie not set.")
    body = response.content.decode()
    assert response.status_code == 403 and 'class="topbar"' in body and "This form has expired" in body


def test_the_500_page_renders_with_nothing_but_static_context(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = defaults.server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert 'class="topbar"' in body and 'data-status="500"' in body and "app.css" in body
