"""The forms of the triggers pages (their rules live in the services; a service's problem is shown on the
field it names)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from designer.triggers import crons
from designer.triggers.models import PARAM_TYPE_CHOICES, CatchUp, DestinationKind


def add_problem(form: forms.Form, field: str, message: str) -> None:
    """Show a service's problem on ``field`` (or on the form when it has no such field)."""
    form.add_error(field if field in form.fields else None, message)


class ParameterForm(forms.Form):
    name = forms.RegexField(
        regex=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=100,
        error_messages={"invalid": "Letters, digits and _, not starting with a digit."},
    )
    type = forms.ChoiceField(choices=PARAM_TYPE_CHOICES)
    default = forms.CharField(required=False, max_length=500)
    description = forms.CharField(required=False, max_length=300)
    required = forms.BooleanField(required=False)
    choices = forms.CharField(
        required=False, max_length=2000, help_text="For 'choice': one per line or comma."
    )

    def choice_list(self) -> list[str]:
        text: str = self.cleaned_data.get("choices") or ""
        return [c.strip() for c in text.replace(",", "\n").splitlines() if c.strip()]


class ScheduleForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="e.g. nightly")
    cron = forms.CharField(max_length=100, help_text="minute hour day month weekday, e.g. 0 2 * * *")
    timezone = forms.ChoiceField(choices=[], initial="UTC")
    pipeline = forms.ChoiceField(choices=[], required=False)
    catch_up = forms.ChoiceField(choices=CatchUp.choices, initial=CatchUp.LATEST)
    catch_up_limit = forms.IntegerField(min_value=1, max_value=crons.MAX_SCAN, initial=10)

    def __init__(self, *args: Any, pipelines: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(z, z) for z in crons.zone_names()]  # type: ignore[attr-defined]
        self.fields["pipeline"].choices = [("", "all pipelines")] + [(p, p) for p in pipelines or []]  # type: ignore[attr-defined]


class BackfillForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    concurrency = forms.IntegerField(min_value=1, max_value=100, initial=2)


class WebhookForm(forms.Form):
    name = forms.SlugField(max_length=100, help_text="e.g. deploy")
    pipeline = forms.ChoiceField(choices=[], required=False)
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "day=/release/date"}),
        help_text="NAME=/json/pointer, one per line: where each run parameter is read in the JSON body.",
    )
    rate_limit = forms.IntegerField(min_value=1, max_value=10_000)
    signed = forms.BooleanField(required=False, help_text="Callers sign the body with HMAC-SHA256.")

    def __init__(self, *args: Any, pipelines: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].choices = [("", "all pipelines")] + [(p, p) for p in pipelines or []]  # type: ignore[attr-defined]
        self.fields["rate_limit"].initial = settings.PIPEDECK_WEBHOOK_RATE_LIMIT


class AlertForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=DestinationKind.choices)
    target = forms.CharField(
        max_length=2000,
        help_text="E-mail addresses (comma-separated), or the webhook URL (kept encrypted, never shown).",
    )
    on_failure = forms.BooleanField(required=False, initial=True)
    on_success = forms.BooleanField(required=False)
    on_recovery = forms.BooleanField(required=False, initial=True)
