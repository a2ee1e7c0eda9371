"""The URL routes: each feature's own (``designer/<feature>/urls.py``), names prefixed ``designer-``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from designer.editor.views import projects

auth_urls = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

urlpatterns = [
    path("", projects.home, name="designer-home"),
    path("accounts/", include(auth_urls)),
    path("admin/", admin.site.urls),
    path("", include("designer.editor.urls")),
    path("", include("designer.runs.urls")),
    path("", include("designer.teams.urls")),
]
