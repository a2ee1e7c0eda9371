"""URL routes of accounts: invitation links, the open sign-up, an owner's invitations."""

from __future__ import annotations

from django.urls import path

from designer.accounts import views

urlpatterns = [
    path("accounts/signup/", views.signup, name="designer-signup"),
    path("accounts/invitations/<str:token>/", views.invitation, name="designer-invitation"),
    path("t/<slug:team>/invitations/", views.invite, name="designer-team-invite"),
    path(
        "t/<slug:team>/invitations/<int:invitation>/revoke/",
        views.revoke,
        name="designer-team-invitation-revoke",
    ),
]
