"""The triggers' encrypted values (webhook signing secrets, alert webhook URLs) under key rotation."""

from __future__ import annotations

from designer.teams import crypto
from designer.triggers.models import AlertDestination, Webhook


def rotate_all() -> int:
    """Re-encrypt every one of them with the primary key (``manage.py rotate_secret_key``); how many."""
    count = 0
    for webhook in Webhook.objects.exclude(signing_ciphertext="").select_for_update():
        webhook.signing_ciphertext = crypto.reencrypt(webhook.signing_ciphertext)[0]
        webhook.save(update_fields=["signing_ciphertext"])
        count += 1
    for destination in AlertDestination.objects.exclude(url_ciphertext="").select_for_update():
        destination.url_ciphertext = crypto.reencrypt(destination.url_ciphertext)[0]
        destination.save(update_fields=["url_ciphertext"])
        count += 1
    return count
