"""``manage.py rotate_secret_key``: re-encrypt every team secret with the primary PIPEDECK_SECRET_KEYS key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from designer.teams import crypto
from designer.teams.secrets import rotate_all
from designer.triggers import keys as trigger_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every team secret with the first key of PIPEDECK_SECRET_KEYS. Rotate by putting a new "
        "key first (keep the old ones after it), run this command, then remove the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Re-encrypt all secrets in one transaction: either every secret moves to the new key or none."""
        try:
            with transaction.atomic():
                changed, current = rotate_all()
                triggers = trigger_keys.rotate_all()  # webhook signing secrets, alert webhook URLs
        except crypto.SecretDecryptionError as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {changed + current} secret(s) with key {crypto.primary_key_id()} "
                f"({changed} were under an older key), and {triggers} webhook secret(s) and alert URL(s)."
            )
        )
