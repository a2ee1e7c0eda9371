"""Accounts: an owner's invitations (team settings), the invitation link, the optional open sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from designer.accounts import invitations
from designer.accounts.forms import SignUpForm
from designer.accounts.models import Invitation
from designer.teams import activity
from designer.teams.models import Role
from designer.teams.views.teams import SETTINGS_TEMPLATE, _settings_context
from designer.web import HtmxHttpRequest, get_team_for

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _members(request: HtmxHttpRequest, team_slug: str, **extra: object) -> HttpResponse:
    """The settings page's members section (htmx), or the page with a message."""
    team = get_team_for(request, team_slug, Role.OWNER)
    if request.htmx:
        return render(request, f"{SETTINGS_TEMPLATE}#members", _settings_context(request, team, **extra))
    if extra.get("members_error"):
        messages.error(request, str(extra["members_error"]))
    elif extra.get("members_notice"):
        messages.success(request, str(extra["members_notice"]))
    if extra.get("invitation_link"):
        messages.info(request, f"Invitation link (shown once): {extra['invitation_link']}")
    return redirect(reverse("designer-team-settings", kwargs={"team": team.slug}) + "#members")


@login_required
@require_POST
def invite(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Owner: invite an e-mail address with a role; the link is e-mailed, or shown when no mail server
    is set."""
    obj = get_team_for(request, team, Role.OWNER)
    email = request.POST.get("email", "")
    try:
        invitation, token = invitations.invite(obj, email, request.POST.get("role", "viewer"), request.user)
    except invitations.InvitationError as exc:
        return _members(request, team, members_error=str(exc))
    link = request.build_absolute_uri(reverse("designer-invitation", kwargs={"token": token}))
    invitations.send(invitation, link)
    activity.record(
        obj,
        request.user,
        "invited",
        object_type="member",
        object_name=invitation.email,
        detail=invitation.role,
    )
    if invitations.mail_server_configured():
        return _members(request, team, members_notice=f"Invitation sent to {invitation.email}.")
    notice = f"Invitation for {invitation.email} made. No mail server is set: give them this link yourself."
    return _members(request, team, members_notice=notice, invitation_link=link)


@login_required
@require_POST
def revoke(request: HtmxHttpRequest, team: str, invitation: int) -> HttpResponse:
    """Owner: a pending invitation's link stops working."""
    obj = get_team_for(request, team, Role.OWNER)
    found = Invitation.objects.pending().filter(team=obj, pk=invitation).first()
    if found is None:
        return _members(request, team, members_error="That invitation is no longer pending.")
    invitations.revoke(found)
    return _members(request, team, members_notice=f"Invitation of {found.email} revoked.")


@require_http_methods(["GET", "POST"])
def invitation(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """The invitation link: a signed-in person joins; anyone else signs up here (or logs in first)."""
    found = invitations.find(token)
    if found is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = SignUpForm(initial={"email": found.email})
    if request.method == "POST":
        user = request.user
        if not user.is_authenticated:
            form = SignUpForm(request.POST)
            if not form.is_valid():
                return render(request, "accounts/invitation.html", {"invitation": found, "form": form})
            user = form.save()
            login(request, user, backend=BACKEND)
        try:
            membership = invitations.accept(found, user)
        except invitations.InvitationError as exc:
            messages.error(request, str(exc))
            return redirect("designer-home")
        activity.record(
            found.team,
            user,
            "joined",
            object_type="team",
            object_name=found.team.name,
            detail=membership.role,
        )
        messages.success(request, f"Welcome to {found.team.name}: you are {membership.role}.")
        return redirect("designer-library", team=found.team.slug)
    return render(request, "accounts/invitation.html", {"invitation": found, "form": form})


@require_http_methods(["GET", "POST"])
def signup(request: HtmxHttpRequest) -> HttpResponse:
    """Open sign-up, when the site allows it (``PIPEDECK_OPEN_SIGNUP``); else back to the login page."""
    if request.user.is_authenticated:
        return redirect("designer-home")
    if not settings.PIPEDECK_OPEN_SIGNUP:
        messages.info(request, "Sign-up is closed on this site: ask a team owner for an invitation.")
        return redirect("login")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save(), backend=BACKEND)
        messages.success(
            request, "Welcome to Pipedeck: create a team, or ask an owner to invite you to theirs."
        )
        return redirect("designer-teams")
    return render(request, "accounts/signup.html", {"form": form})
