"""Team settings: owners add members by username or e-mail, change roles, remove; an owner always remains."""

from __future__ import annotations

from designer.teams.models import ActivityEvent, Membership, Team
from tests.factory import make_user

HX = {"HTTP_HX_REQUEST": "true"}


def test_an_owner_adds_an_existing_user_by_email_with_a_role(crew):
    newcomer = make_user("newcomer", email="New.Comer@acme.test")
    response = crew.client("owner").post(
        "/t/acme/members/add/", {"identifier": "new.comer@ACME.test", "role": "editor"}, **HX
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"newcomer added as editor." in response.content
    assert Membership.objects.get(team=crew.team, user=newcomer).role == "editor"
    event = ActivityEvent.objects.get(verb="added_member")
    assert (event.actor, event.object_name, event.detail) == (crew.users["owner"], "newcomer", "editor")


def test_adding_an_unknown_user_or_a_member_twice_says_why(crew):
    client = crew.client("owner")
    response = client.post("/t/acme/members/add/", {"identifier": "ghost", "role": "viewer"}, **HX)
    assert b"No user has the username or e-mail &#x27;ghost&#x27;" in response.content
    response = client.post("/t/acme/members/add/", {"identifier": "viewer", "role": "viewer"}, **HX)
    assert b"viewer is already a member of Acme." in response.content


def test_without_htmx_the_page_redirects_back_with_a_message(crew):
    make_user("newcomer")
    response = crew.client("owner").post(
        "/t/acme/members/add/", {"identifier": "newcomer", "role": "runner"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/t/acme/settings/#members"
    assert b"newcomer added as runner." in response.content


def test_an_owner_changes_a_role(crew):
    membership = Membership.objects.get(team=crew.team, user=crew.users["viewer"])
    response = crew.client("owner").post(f"/t/acme/members/{membership.pk}/role/", {"role": "runner"}, **HX)
    assert b"viewer is now runner." in response.content
    membership.refresh_from_db()
    assert membership.role == "runner"


def test_the_last_owner_can_be_neither_demoted_nor_removed(crew):
    owner = Membership.objects.get(team=crew.team, role="owner")
    client = crew.client("owner")
    response = client.post(f"/t/acme/members/{owner.pk}/role/", {"role": "editor"}, **HX)
    assert b"A team needs at least one owner: make someone else owner first." in response.content
    response = client.post(f"/t/acme/members/{owner.pk}/remove/", **HX)
    assert b"A team needs at least one owner" in response.content
    owner.refresh_from_db()
    assert owner.role == "owner"
    # with a second owner, the first one may step down
    editor = Membership.objects.get(team=crew.team, role="editor")
    client.post(f"/t/acme/members/{editor.pk}/role/", {"role": "owner"}, **HX)
    response = client.post(f"/t/acme/members/{owner.pk}/role/", {"role": "viewer"}, **HX)
    owner.refresh_from_db()
    assert owner.role == "viewer"
    assert b"owner is now viewer." in response.content and b"Add member" not in response.content


def test_an_owner_removes_a_member(crew):
    membership = Membership.objects.get(team=crew.team, user=crew.users["runner"])
    response = crew.client("owner").post(f"/t/acme/members/{membership.pk}/remove/", **HX)
    assert b"runner removed." in response.content
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_only_owners_manage_members_and_others_see_no_forms(crew):
    membership = Membership.objects.get(team=crew.team, user=crew.users["viewer"])
    for role in ("editor", "runner", "viewer"):
        client = crew.client(role)
        assert client.post(f"/t/acme/members/{membership.pk}/role/", {"role": "owner"}).status_code == 404
        page = client.get("/t/acme/settings/").content.decode()
        assert "Add member" not in page and "Change role" not in page and "Set secret" not in page
    assert "Add member" in crew.client("owner").get("/t/acme/settings/").content.decode()
    membership.refresh_from_db()
    assert membership.role == "viewer"


def test_a_member_of_another_team_cannot_be_changed_through_this_team(crew):
    rival = Membership.objects.get(team=crew.other_team)
    response = crew.client("owner").post(f"/t/acme/members/{rival.pk}/role/", {"role": "viewer"})
    assert response.status_code == 404
    rival.refresh_from_db()
    assert rival.role == "owner"


def test_the_switcher_lists_my_teams_and_creating_a_team_makes_me_owner(crew):
    client = crew.client("outsider")
    response = client.post("/teams/", {"name": "Second Team"}, follow=True)
    assert response.redirect_chain[-1][0] == "/t/second-team/library/"
    page = client.get("/t/second-team/library/").content.decode()
    assert 'data-testid="team-switcher"' in page
    assert "Team: Second Team" in page and "Rival" in page and "Acme" not in page
    assert Membership.objects.get(team__slug="second-team").role == "owner"


def test_an_owner_deletes_the_team_after_typing_its_name(crew):
    client = crew.client("owner")
    response = client.post("/t/acme/delete/", {"confirm": "acme"}, **HX)
    assert b"Type the team&#x27;s name, Acme, to delete it." in response.content
    assert crew.client("editor").post("/t/acme/delete/", {"confirm": "Acme"}).status_code == 404
    response = client.post("/t/acme/delete/", {"confirm": "Acme"}, **HX)
    assert response["HX-Redirect"] == "/teams/"
    assert not Team.objects.filter(slug="acme").exists()
    assert Team.objects.filter(slug="rival").exists()


def test_a_member_added_twice_at_once_gets_a_message_not_a_server_error(crew, monkeypatch):
    newcomer = make_user("racer")
    Membership.objects.create(team=crew.team, user=newcomer, role="viewer")  # the other owner's request
    real_filter = Membership.objects.filter

    def racing_filter(*args, **kwargs):  # type: ignore[no-untyped-def]
        # Our check ran before the other request's insert committed: it saw no membership.
        return Membership.objects.none() if kwargs.get("user") == newcomer else real_filter(*args, **kwargs)

    monkeypatch.setattr(Membership.objects, "filter", racing_filter)
    form = {"identifier": "racer", "role": "editor"}
    response = crew.client("owner").post("/t/acme/members/add/", form, **HX)

    assert response.status_code == 200
    assert "racer is already a member of" in response.content.decode()
    assert real_filter(team=crew.team, user=newcomer).get().role == "viewer"
