"""The authorisation matrix: every URL and websocket route x every role x another team's member x anonymous.

Generated from the URL conf: a pattern without a row in RULES (keyed by URL name) fails the test, so a new
view cannot be forgotten. Conventions asserted here (and documented in the README):
- anonymous: a redirect to the login page (302), for GET, POST and htmx requests alike;
- a member of another team: 404, never the object's content;
- a member whose role is below what the request needs: 404 too (the object is not "there" for them);
- a member with the role: no 401/403/404/405 and no server error.
Every request runs inside a rolled-back savepoint, so the POSTs of one principal never change what the next
one sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from designer.accounts import invitations
from designer.editor.models import Pipeline
from designer.runs.models import Run
from designer.teams import secrets as team_secrets, variables
from designer.teams.models import Membership, Role
from tests.teams.conftest import ROLES, Crew, build_crew
from tests.triggers.matrix import HOOK_TOKEN, make_objects as make_trigger_objects

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed-in"  # any signed-in user, whatever their teams


@dataclass(frozen=True)
class Rule:
    """Who may make one kind of request to a URL, and how to make it."""

    need: str  # a Role value, SIGNED_IN or PUBLIC
    method: str = "get"
    data: dict[str, Any] = field(default_factory=dict)
    htmx: bool = False
    anonymous: int = 302  # what an anonymous request gets (302 = redirect to the login page)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a webhook's token


def get(need: str, **kw: Any) -> Rule:
    return Rule(need, "get", **kw)


def post(need: str, **kw: Any) -> Rule:
    return Rule(need, "post", htmx=kw.pop("htmx", True), **kw)


V, R, E, OWN = Role.VIEWER.value, Role.RUNNER.value, Role.EDITOR.value, Role.OWNER.value
SCHEDULE = {
    "name": "nightly",
    "cron": "0 3 * * *",
    "timezone": "UTC",
    "catch_up": "latest",
    "catch_up_limit": "10",
}

#: URL name -> the requests to try. Add a row for every new view.
RULES: dict[str, tuple[Rule, ...]] = {
    # accounts and home
    "login": (get(PUBLIC, anonymous=200),),
    # health, for load balancers: public, nothing secret in them
    "designer-live": (get(PUBLIC, anonymous=200),),
    "designer-ready": (get(PUBLIC, anonymous=200),),
    "logout": (Rule(PUBLIC, "post", anonymous=302),),
    "designer-home": (get(SIGNED_IN),),
    # projects (designer)
    "designer-project-create": (post(E, data={"name": "New one"}),),
    "designer-project": (get(V),),
    "designer-project-graph": (get(V),),
    "designer-project-needs": (post(E, data={"pipeline": "orders", "needs": ""}),),
    "designer-project-settings": (post(E, data={"name": "Sales", "concurrency": "2"}),),
    "designer-project-download": (get(V),),
    "designer-project-upload": (post(E),),
    "designer-pipeline-create": (post(E, data={"name": "fresh", "type": "ETL"}),),
    # the editor (designer)
    "designer-editor": (get(V),),
    "designer-editor-canvas": (get(V, htmx=True),),
    "designer-step-add": (post(E, data={"plugin": "sleep_extract", "phase": "extract"}),),
    "designer-step-move": (
        post(E, data={"phase": "extract", "index": "0", "to_phase": "extract", "to_index": "0"}),
    ),
    "designer-step-remove": (post(E, data={"phase": "extract", "index": "0"}),),
    "designer-step-form": (get(V, htmx=True, data={"phase": "extract", "index": "0"}),),
    "designer-step-args": (post(E, data={"phase": "extract", "index": "0"}),),
    "designer-set-type": (post(E, data={"type": "ETL"}),),
    "designer-set-merge": (post(E, data={"plugin": ""}),),
    "designer-set-details": (post(E, data={"description": "x", "tags": "a"}),),
    "designer-yaml": (get(V, htmx=True), post(E)),
    "designer-save": (post(E, data={"message": "m"}),),
    "designer-undo": (post(E),),
    "designer-redo": (post(E),),
    "designer-discard": (post(E),),
    "designer-history": (get(V),),
    "designer-diff": (get(V),),
    "designer-restore": (post(E),),
    "designer-pipeline-download": (get(V),),
    "designer-pipeline-delete": (post(E),),
    # runs
    "designer-run-start": (post(R),),
    "designer-runs": (get(V),),
    "designer-runs-start": (post(R, data={"project": "sales"}),),
    "designer-run": (get(V),),
    "designer-run-events": (get(V),),
    "designer-run-cancel": (post(R),),
    "designer-run-rerun": (post(R),),
    # step outputs: readable by whoever may see the run; resume and "run from here" are runs (runner);
    # a preview runs the draft (editor)
    "designer-run-output": (get(V, data={"pipeline": "orders", "step": "extract.wait"}),),
    "designer-run-resume": (post(R),),
    "designer-step-preview": (post(E, data={"phase": "extract", "id": "wait"}),),
    "designer-run-from": (post(R, data={"phase": "load", "id": "sink"}),),
    # teams: settings, members, secrets, variables, activity
    "designer-teams": (get(SIGNED_IN), Rule(SIGNED_IN, "post", data={"name": "Brand new"})),
    "designer-team-settings": (get(V),),
    "designer-team-delete": (post(OWN, data={"confirm": "Acme"}),),
    "designer-team-member-add": (post(OWN, data={"identifier": "outsider", "role": "viewer"}),),
    "designer-team-member-role": (post(OWN, data={"role": "runner"}),),
    "designer-team-member-remove": (post(OWN),),
    "designer-team-secret-set": (post(OWN, data={"name": "NEW", "value": "v"}),),
    "designer-team-secret-delete": (post(OWN),),
    "designer-team-limits-set": (post(OWN, data={"run_cpu_seconds": "60"}),),
    "designer-team-variable-set": (post(E, data={"name": "NEW", "value": "1"}),),
    "designer-team-variable-delete": (post(E),),
    "designer-team-activity": (get(V),),
    "designer-project-variables": (get(V), post(E, data={"name": "NEW", "value": "1"})),
    "designer-project-variable-delete": (post(E),),
    # the library
    "designer-library": (get(V), get(V, htmx=True, data={"q": "ord"})),
    "designer-pipeline-template": (post(E, data={"is_template": "0"}),),
    "designer-template-use": (get(E), post(E, data={"project": "sales"})),
    # reading the source needs viewer; the target (here team A itself) needs editor
    "designer-pipeline-copy": (get(V), Rule(E, "post", data={"target": "acme/sales"})),
    # triggers and alerts
    "designer-project-triggers": (get(V),),
    "designer-run-form": (get(R), post(R, data={"arg-TOKEN": "x"})),
    "designer-parameter-set": (post(E, data={"name": "NEW", "type": "string"}),),
    "designer-parameter-delete": (post(E),),
    "designer-schedule-create": (get(E), post(E, data={**SCHEDULE, "name": "fresh"})),
    "designer-schedule-preview": (get(V, htmx=True, data={"cron": "0 2 * * *", "timezone": "UTC"}),),
    "designer-schedule": (get(V), post(E, data=SCHEDULE)),
    "designer-schedule-pause": (post(E),),
    "designer-schedule-delete": (post(E),),
    "designer-backfill-create": (
        post(R, data={"start": "2026-10-03", "end": "2026-10-04", "concurrency": "1"}),
    ),
    "designer-backfill": (get(V), get(V, htmx=True)),
    "designer-backfill-retry": (post(R),),
    "designer-webhook-create": (post(E, data={"name": "fresh", "rate_limit": "5"}),),
    "designer-webhook-rotate": (post(E),),
    "designer-webhook-delete": (post(E),),
    "designer-alert-create": (
        post(OWN, data={"name": "x", "kind": "email", "target": "x@acme.test", "on_failure": "on"}),
    ),
    "designer-alert-test": (post(OWN),),
    "designer-alert-delete": (post(OWN),),
    "designer-team-schedules": (get(V), get(V, htmx=True)),
    # accounts: the invitation link is its own credential (anyone holding it); sign-up is off by default
    # (a redirect to the login page); owners invite and revoke
    "designer-signup": (get(PUBLIC),),
    "designer-invitation": (get(PUBLIC, anonymous=200), Rule(PUBLIC, "post")),
    "designer-team-invite": (post(OWN, data={"email": "new@acme.test", "role": "viewer"}),),
    "designer-team-invitation-revoke": (post(OWN),),
    # token-authenticated, no session: anyone with the token (tests/triggers/test_webhooks.py)
    "designer-hook": (
        Rule(PUBLIC, "post", anonymous=202, headers={"HTTP_AUTHORIZATION": f"Bearer {HOOK_TOKEN}"}),
    ),
}

#: namespaces whose own access control is tested elsewhere (Django's admin: staff only)
DELEGATED_NAMESPACES = {"admin"}


@pytest.fixture(autouse=True)
def a_live_worker(db: Any) -> None:
    """A worker's beat, so that readiness answers 200 here (its 503 is tested in tests/deploy)."""
    from designer.runs import queue

    queue.beat("authz-matrix", 3600)


#: websocket route -> least role that may connect
WS_RULES: dict[str, str] = {
    "ws/runs/<int:run_id>/": V,
    "ws/teams/<slug:slug>/runs/": V,
    "ws/pipelines/<slug:team>/<slug:project>/<str:pipeline>/": V,
    # any other path: accepted only to be closed with 4404 (tests/deploy/test_bad_requests.py)
    "": PUBLIC,
}

_KWARG = re.compile(r"<(?:\w+:)?(\w+)>")


def _walk(
    patterns: list[Any], prefix: str = "", namespace: str | None = None
) -> list[tuple[str | None, str, str]]:
    found: list[tuple[str | None, str, str]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, route, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            found.append((namespace, pattern.name or f"<unnamed {route}>", route))
    return found


def url_patterns() -> list[tuple[str | None, str, str]]:
    """``(namespace, name, route)`` of every HTTP URL pattern of the project."""
    return _walk(get_resolver().url_patterns)


def _kwargs_values(crew: Crew, run: Run) -> dict[str, Any]:
    viewer = Membership.objects.get(team=crew.team, user=crew.users["viewer"])
    return {
        "team": crew.team.slug,
        "slug": crew.team.slug,
        "project": crew.project.slug,
        "pipeline": "orders",
        "number": 1,
        "run_id": run.pk,
        "member": viewer.pk,
        "name": "TOKEN",
        **crew.trigger_kwargs,
        **crew.account_kwargs,
    }


def _team_a_objects(crew: Crew) -> Run:
    """Everything a URL may name in team A: a template pipeline, a secret, variables, a finished run."""
    Pipeline.objects.filter(project=crew.project, name="orders").update(is_template=True)
    team_secrets.set_secret(crew.team, "TOKEN", "tok-value")
    variables.set_variable(crew.team, None, "TOKEN", "team")
    variables.set_variable(crew.team, crew.project, "TOKEN", "project")
    pipeline = Pipeline.objects.get(project=crew.project, name="orders")
    crew.trigger_kwargs = make_trigger_objects(crew)  # type: ignore[attr-defined]
    invitation, token = invitations.invite(crew.team, "invited@acme.test", "viewer", crew.users["owner"])
    crew.account_kwargs = {"invitation": invitation.pk, "token": token}  # type: ignore[attr-defined]
    return Run.objects.create(
        team=crew.team,
        project=crew.project,
        spec={"concurrency": 2, "pipelines": {"orders": pipeline.spec}},
        versions={"orders": 1},
        state="failed",
        created_by=crew.users["runner"],
    )


def _session_cookies(crew: Crew) -> dict[str, str | None]:
    cookies: dict[str, str | None] = {"anonymous": None}
    for who in (*ROLES, "outsider"):
        client = crew.client(who)
        cookies[who] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


def _request(cookie: str | None, rule: Rule, url: str) -> Any:
    client = Client(raise_request_exception=False)
    if cookie:
        client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    headers = {"HTTP_HX_REQUEST": "true", **rule.headers} if rule.htmx else dict(rule.headers)
    with transaction.atomic():
        response = getattr(client, rule.method)(url, rule.data, **headers)
        transaction.set_rollback(True)
    return response


def _allowed(who: str, need: str) -> bool:
    if need == PUBLIC:
        return True
    if who == "anonymous":
        return False
    if need == SIGNED_IN:
        return True
    return who != "outsider" and Role.at_least(who, need)


def _problem(who: str, rule: Rule, response: Any) -> str | None:
    status = response.status_code
    if who == "anonymous" and rule.need != PUBLIC:
        if status != rule.anonymous:
            return f"expected {rule.anonymous}, got {status}"
        if status == 302 and not response["Location"].startswith(reverse("login")):
            return f"redirected to {response['Location']}, not to the login page"
        return None
    if _allowed(who, rule.need):
        if status in (401, 403, 404, 405) or status >= 500:
            return f"allowed, but got {status}"
        return None
    if status != 404:
        return f"expected 404, got {status}"
    return None


def test_every_url_pattern_has_a_declared_expectation():
    undeclared = [
        f"{name} ({route})"
        for namespace, name, route in url_patterns()
        if namespace not in DELEGATED_NAMESPACES and name not in RULES
    ]
    assert undeclared == [], f"add a row to RULES in {__file__} for: {', '.join(undeclared)}"
    names = {name for _, name, _ in url_patterns()}
    stale = sorted(set(RULES) - names)
    assert stale == [], f"RULES names URLs that no longer exist: {stale}"


def test_the_matrix(crew):
    run = _team_a_objects(crew)
    values = _kwargs_values(crew, run)
    cookies = _session_cookies(crew)
    failures: list[str] = []
    checked = 0
    for namespace, name, route in url_patterns():
        if namespace in DELEGATED_NAMESPACES or name not in RULES:
            continue
        kwargs = {k: values[k] for k in _KWARG.findall(route)}
        url = reverse(name, kwargs=kwargs)
        for rule in RULES[name]:
            for who, cookie in cookies.items():
                response = _request(cookie, rule, url)
                checked += 1
                if problem := _problem(who, rule, response):
                    failures.append(f"{rule.method.upper()} {url} ({name}) as {who}: {problem}")
    assert failures == [], f"{len(failures)} of {checked} requests broke the rules:\n" + "\n".join(failures)
    assert checked >= 6 * len(RULES)


def test_an_object_of_another_team_is_404_even_for_an_owner_through_their_own_team(crew):
    """Team A's owner asks for team B's project, pipeline, run and members under team A's slug or directly."""
    rival_run = Run.objects.create(team=crew.other_team, project=crew.other_project, spec={"pipelines": {}})
    rival_member = Membership.objects.get(team=crew.other_team)
    client = crew.client("owner")
    for url in (
        "/p/acme/secret-plans/",
        "/p/acme/secret-plans/rival_orders/",
        "/p/acme/sales/rival_orders/",
        f"/runs/{rival_run.pk}/",
        "/t/rival/settings/",
        "/t/rival/library/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/t/acme/members/{rival_member.pk}/remove/").status_code == 404
    assert client.post(f"/runs/{rival_run.pk}/cancel/").status_code == 404


def test_the_admin_is_for_staff_only(crew):
    for who in ("anonymous", *ROLES, "outsider"):
        response = crew.client(who).get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), who


# ---- websockets ----------------------------------------------------------------------------------------


def _ws_routes() -> list[str]:
    from designer.routing import websocket_urlpatterns

    return [str(p.pattern) for p in websocket_urlpatterns]


def test_every_websocket_route_has_a_declared_expectation():
    undeclared = [r for r in _ws_routes() if r not in WS_RULES]
    assert undeclared == [], f"add a row to WS_RULES in {__file__} for: {undeclared}"


async def _connects(path: str, cookie: str | None) -> bool:
    from designer.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return bool(connected)


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_matrix():
    crew = await sync_to_async(build_crew)()
    run = await sync_to_async(_team_a_objects)(crew)
    values = await sync_to_async(_kwargs_values)(crew, run)
    cookies = await sync_to_async(_session_cookies)(crew)
    failures = []
    for route, need in WS_RULES.items():
        path = "/" + _KWARG.sub(lambda m: str(values[m.group(1)]), route)
        for who, cookie in cookies.items():
            expected = _allowed(who, need)
            if await _connects(path, cookie) != expected:
                failures.append(f"{path} as {who}: expected {'accepted' if expected else 'rejected'}")
    assert failures == []
