"""``manage.py clean_outputs``: apply the retention rule of kept step outputs and previews now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from designer.runs import retention


class Command(BaseCommand):
    help = (
        "Remove runs' kept step outputs (Parquet) older than PIPEDECK_OUTPUTS_RETENTION_DAYS or over a "
        "team's PIPEDECK_OUTPUTS_TEAM_MAX_MB (oldest first), and old previews. Idle workers do it too."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = retention.clean()
        self.stdout.write(self.style.SUCCESS(f"Cleaned: {done}."))
