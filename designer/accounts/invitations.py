"""Inviting people into a team: an owner invites an e-mail address with a role; the invited person opens
the one-time link (valid ``INVITATION_DAYS``), signs up or logs in, and is a member."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from designer.accounts.models import INVITATION_DAYS, Invitation, token_hash
from designer.teams.models import Membership, Role, Team

EMAIL_MAX = 254


class InvitationError(ValueError):
    """An invitation that cannot be made or used; the message is shown as is."""


def mail_server_configured() -> bool:
    """True when e-mail leaves the site (an SMTP server is set): else the owner is shown the link."""
    backend = str(settings.MAILERS.get("default", {}).get("BACKEND", ""))
    return backend.endswith("smtp.EmailBackend")


@transaction.atomic
def invite(team: Team, email: str, role: str, invited_by: Any) -> tuple[Invitation, str]:
    """A new invitation of ``email`` to ``team`` as ``role``, and its token (shown or sent once, stored
    hashed). An earlier pending invitation of the same address is replaced."""
    email = email.strip()
    if not email:
        raise InvitationError("Type the e-mail address of the person to invite.")
    if len(email) > EMAIL_MAX:
        raise InvitationError(f"An e-mail address has at most {EMAIL_MAX} characters (got {len(email)}).")
    try:
        validate_email(email)
    except ValidationError:
        raise InvitationError(f"'{email}' is not an e-mail address.") from None
    if role not in Role.values:
        raise InvitationError(f"Unknown role '{role}': choose one of {', '.join(Role.values)}.")
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise InvitationError(f"{email} is already a member of {team.name}.")
    Invitation.objects.pending().filter(team=team, email__iexact=email).update(revoked_at=timezone.now())
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        token_hash=token_hash(token),
        invited_by=invited_by if getattr(invited_by, "is_authenticated", False) else None,
        expires_at=Invitation.expiry(),
    )
    return invitation, token


def send(invitation: Invitation, link: str) -> None:
    """E-mail the link to the invited address (through the ``MAILERS`` default)."""
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "A team owner"
    body = (
        f"{inviter} invites you to the team {invitation.team.name} on Pipedeck, as {invitation.role}.\n\n"
        f"Open this link to join (it works once, for {INVITATION_DAYS} days):\n{link}\n"
    )
    send_mail(
        f"Join {invitation.team.name} on Pipedeck", body, settings.DEFAULT_FROM_EMAIL, [invitation.email]
    )


def find(token: str) -> Invitation | None:
    """The pending invitation of ``token`` (None when unknown, used, revoked or expired)."""
    if not token or len(token) > 100:
        return None
    return Invitation.objects.pending().select_related("team").filter(token_hash=token_hash(token)).first()


@transaction.atomic
def accept(invitation: Invitation, user: Any) -> Membership:
    """Make ``user`` a member of the invitation's team with its role (a member keeps a higher role); the
    link is used up."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.usable:
        raise InvitationError("This invitation has already been used, was revoked or has expired.")
    membership, created = Membership.objects.get_or_create(
        team=locked.team, user=user, defaults={"role": locked.role}
    )
    if not created and Role.rank(locked.role) > Role.rank(membership.role):
        membership.role = locked.role
        membership.save(update_fields=["role"])
    locked.accepted_at, locked.accepted_by = timezone.now(), user
    locked.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def revoke(invitation: Invitation) -> None:
    """The link stops working."""
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])


def pending(team: Team) -> list[Invitation]:
    """The team's invitations that can still be used, newest first."""
    return list(Invitation.objects.pending().filter(team=team).select_related("invited_by"))
