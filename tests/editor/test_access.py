"""Every designer view: anonymous users go to the login page; non-members get 404; roles are ordered."""

from __future__ import annotations

import pytest
from django.urls import reverse

from designer.teams.models import Role
from designer.web import can
from tests.factory import add_member, make_pipeline, make_user

pytestmark = pytest.mark.django_db

PROJECT_VIEWS = [
    "designer-project",
    "designer-project-graph",
    "designer-project-needs",
    "designer-project-settings",
    "designer-project-download",
    "designer-project-upload",
    "designer-pipeline-create",
]
PIPELINE_VIEWS = [
    "designer-editor",
    "designer-editor-canvas",
    "designer-step-add",
    "designer-step-move",
    "designer-step-remove",
    "designer-step-form",
    "designer-step-args",
    "designer-set-type",
    "designer-set-merge",
    "designer-set-details",
    "designer-yaml",
    "designer-save",
    "designer-history",
    "designer-diff",
    "designer-pipeline-download",
    "designer-pipeline-delete",
]


def all_urls(project, pipeline) -> list[str]:  # type: ignore[no-untyped-def]
    kw = {"team": project.team.slug, "project": project.slug}
    urls = [reverse(name, kwargs=kw) for name in PROJECT_VIEWS]
    urls += [reverse(name, kwargs={**kw, "pipeline": pipeline.name}) for name in PIPELINE_VIEWS]
    urls.append(reverse("designer-restore", kwargs={**kw, "pipeline": pipeline.name, "number": 1}))
    urls.append(reverse("designer-project-create", kwargs={"team": project.team.slug}))
    return urls


def test_anonymous_users_are_sent_to_login_everywhere(client, project):
    pipeline = make_pipeline(project, "p")
    for url in [*all_urls(project, pipeline), reverse("designer-home")]:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/?next="), url


def test_non_members_get_404_everywhere(bob_client, project):
    pipeline = make_pipeline(project, "p")
    for url in all_urls(project, pipeline):
        statuses = {bob_client.get(url).status_code, bob_client.post(url).status_code}
        assert statuses in ({404}, {404, 405}), url  # 405 only for the method a view never takes


def test_an_unknown_team_is_404_like_a_foreign_one(alice_client):
    assert alice_client.get("/p/nope/nothing/").status_code == 404
    assert alice_client.get("/p/nope/nothing/p/").status_code == 404


def test_roles_are_ordered(team):
    users = {role: make_user(role) for role in ["viewer", "runner", "editor", "owner"]}
    for role, user in users.items():
        add_member(team, user, role)
    assert [r for r, u in users.items() if can(u, team, Role.EDITOR)] == ["editor", "owner"]
    assert [r for r, u in users.items() if can(u, team, Role.RUNNER)] == ["runner", "editor", "owner"]
    assert Role.at_least("owner", "viewer") and not Role.at_least("viewer", "runner")
    assert not Role.at_least(None, "viewer") and not Role.at_least("boss", "viewer")


def test_logout(alice_client):
    response = alice_client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert alice_client.get("/").status_code == 302
