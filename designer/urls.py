"""The URL routes: each feature's own (``designer/<feature>/urls.py``), names prefixed ``designer-``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from designer.editor.views import projects


def setting(name: str) -> Callable[[], Any]:
    """A setting's value, read each time a template uses it (templates call callables)."""
    return lambda: getattr(settings, name)


auth_urls = [
    path(
        "login/",
        auth_views.LoginView.as_view(extra_context={"open_signup": setting("PIPEDECK_OPEN_SIGNUP")}),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

urlpatterns = [
    path("", projects.home, name="designer-home"),
    path("accounts/", include(auth_urls)),
    path("admin/", admin.site.urls),
    path("", include("designer.health")),
    path("", include("designer.editor.urls")),
    path("", include("designer.runs.urls")),
    path("", include("designer.teams.urls")),
    path("", include("designer.triggers.urls")),
    path("", include("designer.accounts.urls")),
]
