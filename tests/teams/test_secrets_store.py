"""Team secrets: write-only storage, the worker-side resolver, the import report, key rotation."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from designer.teams import crypto, secrets as team_secrets
from designer.teams.models import Secret
from orchestrator.resolve import Redactor, ResolveError, resolve_value
from orchestrator.spec import ProjectSpec


def test_set_stores_only_ciphertext_and_replace_keeps_one_row(crew, fernet_keys):
    secret, created = team_secrets.set_secret(crew.team, "DB_PASSWORD", "hunter2", crew.users["owner"])
    assert created
    assert "hunter2" not in secret.ciphertext
    _, created = team_secrets.set_secret(crew.team, "DB_PASSWORD", "correct horse", crew.users["owner"])
    assert not created
    row = Secret.objects.get(team=crew.team, name="DB_PASSWORD")
    assert crypto.decrypt(row.ciphertext) == "correct horse"
    assert row.key_id == crypto.key_id(fernet_keys[0])
    assert "hunter2" not in repr(row) and "correct" not in str(row)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("1BAD", "x", "letters, digits and underscores"),
        ("has space", "x", "letters, digits and underscores"),
        ("OK", "", "The value is empty"),
    ],
)
def test_bad_names_and_empty_values_are_refused(crew, name, value, message):
    with pytest.raises(ValidationError, match=message):
        team_secrets.set_secret(crew.team, name, value)
    assert not Secret.objects.exists()


def test_delete(crew):
    team_secrets.set_secret(crew.team, "TOKEN", "abc")
    assert team_secrets.delete_secret(crew.team, "TOKEN")
    assert not team_secrets.delete_secret(crew.team, "TOKEN")
    assert team_secrets.secret_names(crew.team) == []


def test_the_resolver_decrypts_only_its_own_team_and_feeds_the_redactor(crew):
    team_secrets.set_secret(crew.team, "TOKEN", "tok-123")
    team_secrets.set_secret(crew.other_team, "RIVAL", "rival-456")
    redactor = Redactor()
    resolve = team_secrets.team_secret_resolver(crew.team, redactor)
    assert resolve("TOKEN", None) == "tok-123"
    assert redactor.redact("the token is tok-123") == "the token is ***"
    with pytest.raises(ResolveError, match="secret 'RIVAL' is not set in team 'Acme'") as caught:
        resolve("RIVAL", None)
    assert "rival-456" not in str(caught.value)
    assert "tok-123" not in repr(resolve)


def test_the_resolver_reads_keys_of_a_json_secret_and_plugs_into_the_engine(crew):
    team_secrets.set_secret(crew.team, "WAREHOUSE", json.dumps({"user": "etl", "password": "pw-789"}))
    resolve = team_secrets.team_secret_resolver(crew.team)
    redactor = Redactor()
    args = {"dsn": "postgresql://${{ secrets.WAREHOUSE.user }}:${{ secrets.WAREHOUSE.password }}@db/x"}
    resolved = resolve_value(args, variables={}, env={}, secrets=resolve, redactor=redactor)
    assert resolved == {"dsn": "postgresql://etl:pw-789@db/x"}
    assert redactor.redact(resolved["dsn"]) == "postgresql://***:***@db/x"


def test_the_resolver_never_queries_the_database_when_called(crew, django_assert_num_queries):
    team_secrets.set_secret(crew.team, "TOKEN", "tok-123")
    resolve = team_secrets.team_secret_resolver(crew.team)
    with django_assert_num_queries(0):
        assert resolve("TOKEN", None) == "tok-123"


def test_secret_references_are_found_anywhere_in_a_spec():
    spec = {"a": ["${{ secrets.ONE }}", {"b": "x ${{secrets.TWO}} y ${{ variables.V }}"}]}
    assert team_secrets.secret_references(spec) == {"ONE", "TWO"}


def test_the_import_report_maps_names_and_flags_values(crew):
    team_secrets.set_secret(crew.team, "WAREHOUSE", "x")
    spec = ProjectSpec.model_validate(
        {
            "secrets": {
                "WAREHOUSE": {"plugin": "env_secret", "args": {"name": "WH_DSN"}},
                "API_TOKEN": {"plugin": "static_secret", "args": {"value": "tok-in-file"}},
                "VAULTED": {"plugin": "vault_secret", "args": {"path": "kv/etl"}},
            },
            "pipelines": {
                "p": {
                    "type": "ETL",
                    "phases": {
                        "extract": {
                            "steps": [{"plugin": "csv_extract", "args": {"path": "${{ secrets.CRM }}"}}]
                        },
                        "load": {"steps": [{"plugin": "csv_load", "args": {"path": "out.csv"}}]},
                    },
                }
            },
        }
    )
    report = team_secrets.secret_import_report(spec, crew.team)
    assert (
        "The file holds a value for secret 'API_TOKEN': it was NOT stored. "
        "An owner can set it under Team settings > Secrets." in report
    )
    assert "Secret 'WAREHOUSE' will use the team secret 'WAREHOUSE'." in report
    assert any(m.startswith("Secret 'CRM' is not set in team 'Acme'") for m in report)
    assert any(m.startswith("Secret 'VAULTED' uses plugin 'vault_secret'") for m in report)
    assert not any("tok-in-file" in m for m in report)
    clean = team_secrets.sanitize_secret_declarations(spec.secrets)
    assert "tok-in-file" not in json.dumps(clean)
    assert clean["WAREHOUSE"] == {"plugin": "env_secret", "args": {"name": "WH_DSN"}}
    assert clean["API_TOKEN"] == {"plugin": "static_secret"}


def test_rotate_secret_key_reencrypts_every_secret_with_the_primary_key(crew, settings):
    old = Fernet.generate_key().decode()
    settings.PIPEDECK_SECRET_KEYS = [old]
    team_secrets.set_secret(crew.team, "ONE", "first")
    team_secrets.set_secret(crew.other_team, "TWO", "second")
    new = Fernet.generate_key().decode()
    settings.PIPEDECK_SECRET_KEYS = [new, old]
    call_command("rotate_secret_key", stdout=(out := __import__("io").StringIO()))
    assert "Re-encrypted 2 secret(s)" in out.getvalue() and "2 were under an older key" in out.getvalue()
    settings.PIPEDECK_SECRET_KEYS = [new]  # the old key can now be dropped
    assert {s.key_id for s in Secret.objects.all()} == {crypto.key_id(new)}
    assert team_secrets.team_secret_resolver(crew.team)("ONE", None) == "first"
    assert team_secrets.team_secret_resolver(crew.other_team)("TWO", None) == "second"


def test_rotation_changes_nothing_when_a_secret_cannot_be_decrypted(crew, settings):
    settings.PIPEDECK_SECRET_KEYS = [Fernet.generate_key().decode()]
    team_secrets.set_secret(crew.team, "ONE", "first")
    before = Secret.objects.get().ciphertext
    settings.PIPEDECK_SECRET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("rotate_secret_key")
    assert Secret.objects.get().ciphertext == before


def test_a_secret_created_by_a_concurrent_request_is_replaced_not_a_server_error(crew, monkeypatch):
    theirs, key_id = crypto.encrypt("theirs")
    Secret.objects.create(team=crew.team, name="API_TOKEN", ciphertext=theirs, key_id=key_id)
    real_lock = Secret.objects.select_for_update
    calls = []

    def racing_lock():  # type: ignore[no-untyped-def]
        # The other request's insert commits between our lookup (which saw nothing) and our insert.
        calls.append(1)
        return Secret.objects.none() if len(calls) == 1 else real_lock()

    monkeypatch.setattr(Secret.objects, "select_for_update", racing_lock)
    secret, created = team_secrets.set_secret(crew.team, "API_TOKEN", "ours", crew.users["owner"])

    assert not created
    assert Secret.objects.filter(team=crew.team, name="API_TOKEN").count() == 1
    assert crypto.decrypt(Secret.objects.get(pk=secret.pk).ciphertext) == "ours"
