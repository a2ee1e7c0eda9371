"""Team membership rules: add an existing user, change roles, remove; a team always keeps an owner."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.text import slugify

from designer import limits
from designer.limits import check_length
from designer.teams.models import Membership, Role, Team

LAST_OWNER = "A team needs at least one owner: make someone else owner first."


class MembershipError(ValueError):
    """A membership change that is not allowed; the message is shown to the user as is."""


def members(team: Team) -> list[Membership]:
    """The team's memberships, owners first, then by username."""
    order = {r.value: i for i, r in enumerate(reversed(Role))}
    rows = list(Membership.objects.filter(team=team).select_related("user"))
    return sorted(rows, key=lambda m: (order.get(m.role, 99), m.user.get_username().lower()))


def find_user(identifier: str) -> Any:
    """The user whose username or e-mail is ``identifier`` (case-insensitive), else MembershipError."""
    identifier = identifier.strip()
    if not identifier:
        raise MembershipError("Type the username or e-mail of the person to add.")
    users = list(
        get_user_model().objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier))[:2]
    )
    if not users:
        raise MembershipError(
            f"No user has the username or e-mail '{identifier}'. They need an account before being added."
        )
    if len(users) > 1:
        raise MembershipError(f"Several users match '{identifier}': use the username instead.")
    return users[0]


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise MembershipError(f"Unknown role '{role}': choose one of {', '.join(Role.values)}.")


@transaction.atomic
def add_member(team: Team, identifier: str, role: str = Role.VIEWER) -> Membership:
    """Add an existing user (by username or e-mail) to ``team`` with ``role``."""
    _check_role(role)
    user = find_user(identifier)
    already = MembershipError(f"{user.get_username()} is already a member of {team.name}.")
    if Membership.objects.filter(team=team, user=user).exists():
        raise already
    try:
        with transaction.atomic():  # a savepoint: another request may add the same user meanwhile
            return Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError:
        raise already from None


def _owners_left_without(team: Team, membership: Membership) -> int:
    owners = Membership.objects.select_for_update().filter(team=team, role=Role.OWNER)
    return owners.exclude(pk=membership.pk).count()


@transaction.atomic
def change_role(membership: Membership, role: str) -> Membership:
    """Give ``membership`` a new role, refusing to demote the team's last owner."""
    _check_role(role)
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _owners_left_without(membership.team, membership) == 0
    ):
        raise MembershipError(LAST_OWNER)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(membership: Membership) -> None:
    """Remove ``membership`` from its team, refusing to remove the last owner."""
    if membership.role == Role.OWNER and _owners_left_without(membership.team, membership) == 0:
        raise MembershipError(LAST_OWNER)
    membership.delete()


def user_teams(user: Any) -> list[tuple[Team, str]]:
    """``(team, role)`` for every team ``user`` belongs to, by team name."""
    if user is None or not user.is_authenticated:
        return []
    rows = Membership.objects.filter(user=user).select_related("team").order_by("team__name")
    return [(m.team, m.role) for m in rows]


@transaction.atomic
def create_team(name: str, owner: Any) -> Team:
    """A new team named ``name`` with ``owner`` as its first owner (slug made unique)."""
    name = name.strip()
    if not name:
        raise MembershipError("Give the team a name.")
    try:
        check_length("The team's name", name, limits.NAME)
    except limits.TooLong as exc:
        raise MembershipError(str(exc)) from None
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    team = Team.objects.create(name=name, slug=slug)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team
