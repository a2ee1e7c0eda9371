"""Secrets in the UI: owners set, replace and delete; the value is never shown again to anyone."""

from __future__ import annotations

from designer.teams import crypto
from designer.teams.models import Secret

HX = {"HTTP_HX_REQUEST": "true"}
VALUE = "pa55-w0rd-VALUE"


def test_an_owner_sets_replaces_and_deletes_a_secret_whose_value_never_comes_back(crew):
    client = crew.client("owner")
    response = client.post("/t/acme/secrets/", {"name": "DB_PASSWORD", "value": VALUE}, **HX)
    assert b"Secret DB_PASSWORD saved. Its value will not be shown again." in response.content
    assert VALUE.encode() not in response.content
    secret = Secret.objects.get()
    assert crypto.decrypt(secret.ciphertext) == VALUE and VALUE not in secret.ciphertext
    for role in ("owner", "editor", "runner", "viewer"):
        page = crew.client(role).get("/t/acme/settings/")
        assert b"DB_PASSWORD" in page.content and VALUE.encode() not in page.content
        assert secret.ciphertext.encode() not in page.content
    response = client.post("/t/acme/secrets/", {"name": "DB_PASSWORD", "value": "new-" + VALUE}, **HX)
    assert b"Secret DB_PASSWORD replaced." in response.content and VALUE.encode() not in response.content
    assert Secret.objects.count() == 1
    response = client.post("/t/acme/secrets/DB_PASSWORD/delete/", **HX)
    assert b"Secret DB_PASSWORD deleted." in response.content
    assert not Secret.objects.exists()


def test_a_refused_secret_does_not_echo_its_value(crew):
    response = crew.client("owner").post("/t/acme/secrets/", {"name": "bad name", "value": VALUE}, **HX)
    assert b"Secret &#x27;bad name&#x27; was not saved" in response.content
    assert VALUE.encode() not in response.content


def test_only_owners_touch_secrets(crew):
    for role in ("editor", "runner", "viewer", "outsider"):
        client = crew.client(role)
        assert client.post("/t/acme/secrets/", {"name": "X", "value": VALUE}).status_code == 404
    assert not Secret.objects.exists()
