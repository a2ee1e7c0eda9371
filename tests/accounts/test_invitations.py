"""Issue 12, defect 10: a second person can get in. Owners invite by e-mail (a one-time link, valid 7 days,
stored hashed, shown to the owner when no mail server is set); the open sign-up is off unless enabled;
the README says how the first admin is made and how people join."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from designer.accounts import invitations
from designer.accounts.models import Invitation, token_hash
from designer.teams.models import Membership
from tests.factory import make_user

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
README = Path(__file__).resolve().parents[2] / "README.md"
SIGN_UP = {
    "username": "newbie",
    "email": "newbie@acme.test",
    "password1": "a-Long-pass-42",
    "password2": "a-Long-pass-42",
}


@pytest.fixture(autouse=True)
def fast_passwords(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def invite(client: Client, email: str = "newbie@acme.test", role: str = "editor") -> str:
    """The owner invites; the link the page shows."""
    body = client.post("/t/acme/invitations/", {"email": email, "role": role}, **HX).content.decode()
    found = re.search(r"(http://testserver/accounts/invitations/[^<\s]+/)", body)
    assert found, body
    return found.group(1).replace("http://testserver", "")


def test_defect_10_an_owner_invites_by_email_and_the_new_person_signs_up_and_is_a_member(team, alice_client):
    link = invite(alice_client)
    assert len(mail.outbox) == 1 and link in mail.outbox[0].body
    assert mail.outbox[0].to == ["newbie@acme.test"] and "Acme" in mail.outbox[0].subject
    invitation = Invitation.objects.get()
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert invitation.token_hash == token_hash(token) and token not in invitation.token_hash
    assert abs(invitation.expires_at - invitation.created_at - dt.timedelta(days=7)) < dt.timedelta(seconds=5)

    newcomer = Client()
    page = newcomer.get(link).content.decode()
    assert "invites" in page and "newbie@acme.test" in page and "as <strong>editor</strong>" in page
    response = newcomer.post(link, SIGN_UP)
    assert response.status_code == 302 and response["Location"] == "/t/acme/library/"
    membership = Membership.objects.get(team=team, user__username="newbie")
    assert membership.role == "editor"
    assert "Acme" in newcomer.get("/").content.decode()  # they see the team
    # the link works once
    assert Client().get(link).status_code == 404


def test_an_existing_user_accepts_while_logged_in(team, alice_client, bob, bob_client):
    link = invite(alice_client, email="bob@elsewhere.test", role="runner")
    assert 'id="accept-invitation"' in bob_client.get(link).content.decode()
    bob_client.post(link)
    assert Membership.objects.get(team=team, user=bob).role == "runner"


def test_an_expired_or_revoked_link_does_not_work(team, alice_client):
    link = invite(alice_client)
    Invitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert Client().get(link).status_code == 404
    link = invite(alice_client, email="other@acme.test")
    pending = Invitation.objects.get(email="other@acme.test")
    body = alice_client.post(f"/t/acme/invitations/{pending.pk}/revoke/", **HX).content.decode()
    assert "Invitation of other@acme.test revoked." in body
    assert Client().post(link, SIGN_UP).status_code == 404
    assert not Membership.objects.filter(user__username="newbie").exists()


def test_the_link_is_shown_to_the_owner_only_without_a_mail_server(team, alice_client, settings):
    body = alice_client.post("/t/acme/invitations/", {"email": "a@acme.test", "role": "viewer"}, **HX)
    assert 'id="invitation-link"' in body.content.decode()
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
    assert invitations.mail_server_configured()


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Type the e-mail address"),
        ("not-an-address", "is not an e-mail address"),
        ("x" * 250 + "@a.io", "at most 254 characters"),
        ("alice@acme.test", "is already a member"),
    ],
)
def test_bad_invitations_say_why(team, alice, alice_client, email, message):
    alice.email = "alice@acme.test"
    alice.save()
    body = alice_client.post(
        "/t/acme/invitations/", {"email": email, "role": "viewer"}, **HX
    ).content.decode()
    assert message in body and not Invitation.objects.exists()


def test_only_owners_invite(team, alice):
    editor = make_user("ed")
    Membership.objects.create(team=team, user=editor, role="editor")
    client = Client()
    client.force_login(editor)
    assert client.post("/t/acme/invitations/", {"email": "x@acme.test", "role": "owner"}).status_code == 404


def test_open_sign_up_is_off_by_default_and_works_when_enabled(settings):
    from django.conf import settings as live

    assert live.PIPEDECK_OPEN_SIGNUP is False
    response = Client().get("/accounts/signup/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "/accounts/signup/" not in Client().get("/accounts/login/").content.decode()
    settings.PIPEDECK_OPEN_SIGNUP = True
    assert 'id="signup-link"' in Client().get("/accounts/login/").content.decode()
    client = Client()
    response = client.post("/accounts/signup/", SIGN_UP)
    assert response.status_code == 302 and client.get("/").status_code == 200


def test_the_readme_says_how_the_first_admin_is_made_and_how_people_join():
    text = README.read_text(encoding="utf-8")
    assert "createsuperuser" in text and "invit" in text and "PIPEDECK_OPEN_SIGNUP" in text
