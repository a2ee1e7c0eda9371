"""Secret encryption at rest: Fernet keys from PIPEDECK_SECRET_KEYS, the first one encrypts.

``PIPEDECK_SECRET_KEYS`` holds comma-separated Fernet keys (``Fernet.generate_key()``). The first key is the
primary: it encrypts every new value; the others only decrypt, so a key can be rotated in without downtime
(``manage.py rotate_secret_key`` then re-encrypts every stored secret with the primary key). Without a key,
a development key is derived from Django's SECRET_KEY and a loud warning is logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

ENV_NAME = "PIPEDECK_SECRET_KEYS"


class SecretDecryptionError(Exception):
    """A stored secret that none of the configured keys can decrypt."""


def _configured_keys() -> list[str]:
    raw = getattr(settings, ENV_NAME, None)
    if raw is None:
        raw = os.environ.get(ENV_NAME, "")
    if isinstance(raw, str):
        raw = raw.split(",")
    return [k.strip() for k in raw if k and k.strip()]


def _dev_key() -> str:
    digest = hashlib.sha256(b"pipedeck-secrets:" + str(settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def key_id(key: str | bytes) -> str:
    """A short, non-secret fingerprint of a key, stored beside each ciphertext."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).hexdigest()[:12]


@lru_cache(maxsize=4)
def _keyring(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"{ENV_NAME} must hold comma-separated Fernet keys (32 url-safe base64-encoded bytes each); "
            "make one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def keys() -> tuple[str, ...]:
    """The configured keys, primary first (a derived development key when none is configured)."""
    configured = _configured_keys()
    if configured:
        return tuple(configured)
    _warn_dev_key()
    return (_dev_key(),)


@lru_cache(maxsize=1)
def _warn_dev_key() -> None:
    logger.warning(
        "!!! %s is not set: team secrets are encrypted with a development key derived from SECRET_KEY. "
        "Set %s to your own Fernet key(s) before storing real secrets. !!!",
        ENV_NAME,
        ENV_NAME,
    )


def primary_key_id() -> str:
    """The fingerprint of the key that encrypts new values."""
    return key_id(keys()[0])


def encrypt(value: str) -> tuple[str, str]:
    """Encrypt ``value`` with the primary key; return ``(ciphertext, key_id)``."""
    ring = keys()
    token = _keyring(ring).encrypt(value.encode("utf-8"))
    return token.decode("ascii"), key_id(ring[0])


def decrypt(ciphertext: str) -> str:
    """Decrypt with any configured key; raise SecretDecryptionError (no value in it) when none fits."""
    try:
        return _keyring(keys()).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise SecretDecryptionError(
            f"a stored secret cannot be decrypted with the keys in {ENV_NAME}: "
            "add the key it was encrypted with (after the primary key)"
        ) from exc


def reencrypt(ciphertext: str) -> tuple[str, str]:
    """Re-encrypt a ciphertext with the primary key; return ``(ciphertext, key_id)``."""
    ring = keys()
    try:
        token = _keyring(ring).rotate(ciphertext.encode("ascii"))
    except InvalidToken as exc:
        raise SecretDecryptionError(
            f"a stored secret cannot be decrypted with the keys in {ENV_NAME}: "
            "add the key it was encrypted with (after the primary key)"
        ) from exc
    return token.decode("ascii"), key_id(ring[0])
