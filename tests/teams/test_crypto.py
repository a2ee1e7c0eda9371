"""Secret encryption at rest: Fernet keys from settings, the first encrypts, all decrypt."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from designer.teams import crypto


def test_it_round_trips_and_never_stores_clear_text(fernet_keys):
    ciphertext, key_id = crypto.encrypt("hunter2-s3cret")
    assert "hunter2" not in ciphertext
    assert key_id == crypto.key_id(fernet_keys[0])
    assert crypto.decrypt(ciphertext) == "hunter2-s3cret"


def test_it_decrypts_with_an_older_key_and_reencrypts_with_the_primary(settings, fernet_keys):
    old = Fernet.generate_key().decode()
    settings.PIPEDECK_SECRET_KEYS = [old]
    ciphertext, old_id = crypto.encrypt("v")
    settings.PIPEDECK_SECRET_KEYS = [fernet_keys[0], old]
    assert crypto.decrypt(ciphertext) == "v"
    rotated, new_id = crypto.reencrypt(ciphertext)
    assert new_id != old_id
    settings.PIPEDECK_SECRET_KEYS = [fernet_keys[0]]
    assert crypto.decrypt(rotated) == "v"


def test_a_missing_key_is_an_error_that_names_the_setting(settings, fernet_keys):
    ciphertext, _ = crypto.encrypt("v")
    settings.PIPEDECK_SECRET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretDecryptionError, match="PIPEDECK_SECRET_KEYS"):
        crypto.decrypt(ciphertext)


def test_a_malformed_key_is_a_configuration_error(settings):
    settings.PIPEDECK_SECRET_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        crypto.encrypt("v")


def test_a_comma_separated_string_is_accepted(settings, fernet_keys):
    settings.PIPEDECK_SECRET_KEYS = ",".join(fernet_keys)
    assert crypto.keys() == tuple(fernet_keys)


def test_without_keys_a_development_key_is_derived_with_a_warning(settings, monkeypatch, caplog):
    settings.PIPEDECK_SECRET_KEYS = []
    monkeypatch.delenv("PIPEDECK_SECRET_KEYS", raising=False)
    crypto._warn_dev_key.cache_clear()
    ciphertext, _ = crypto.encrypt("v")
    assert crypto.decrypt(ciphertext) == "v"
    assert "PIPEDECK_SECRET_KEYS is not set" in caplog.text
