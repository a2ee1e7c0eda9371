"""Django forms of the designer that are not generated from plugin schemas."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator

from designer.runs.isolation import LIMIT_FIELDS
from designer.teams.models import Team

#: limit name -> (label, unit)
LIMIT_LABELS = {
    "cpu_seconds": ("CPU time", "s"),
    "memory_mib": ("Memory (address space)", "MiB"),
    "open_files": ("Open files", "files"),
    "wall_seconds": ("Wall time", "s"),
}


class RunLimitsForm(forms.ModelForm[Team]):
    """An owner's limits for their team's runs: blank keeps the site's default, never above its maximum."""

    class Meta:
        model = Team
        fields = list(LIMIT_FIELDS.values())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field_name in LIMIT_FIELDS.items():
            label, unit = LIMIT_LABELS[name]
            default = settings.PIPEDECK_RUN_LIMITS[name]
            most = settings.PIPEDECK_RUN_LIMITS_MAX[name]
            field = self.fields[field_name]
            field.label = f"{label} ({unit})"
            field.help_text = f"Site default {default}, at most {most}."
            field.widget.attrs.update({"min": 1, "max": most, "placeholder": str(default)})
            field.validators += [MinValueValidator(1), MaxValueValidator(most)]
