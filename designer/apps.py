"""The designer app."""

from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig


class DesignerConfig(AppConfig):
    name = "designer"
    verbose_name = "Pipedeck"
    default_auto_field = "django.db.models.BigAutoField"
    path = str(Path(__file__).resolve().parent)  # one location even when imported via an editable install
