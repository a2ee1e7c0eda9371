"""The sign-up form (an invitation's, and the open sign-up's when the site allows it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import BaseUserCreationForm


class SignUpForm(BaseUserCreationForm):  # type: ignore[type-arg]
    """Username, e-mail and password twice (Django's password validators apply)."""

    class Meta(BaseUserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True

    def clean_email(self) -> str:
        email = str(self.cleaned_data.get("email", "")).strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            from django.core.exceptions import ValidationError

            raise ValidationError("An account with this e-mail exists: log in instead.")
        return email
