"""Team pages: my teams, team settings (members, roles, secrets, variables), project variables, activity."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from designer.accounts import invitations
from designer.editor.models import Project
from designer.runs.isolation import run_limits
from designer.teams import activity, members, secrets as team_secrets, variables
from designer.teams.forms import RunLimitsForm
from designer.teams.models import Membership, Role, Secret, Team
from designer.web import HtmxHttpRequest, get_project_for, get_team_for, go_to, membership_for

SETTINGS_TEMPLATE = "teams/settings.html"


def _settings_context(request: HtmxHttpRequest, team: Team, **extra: Any) -> dict[str, Any]:
    membership = membership_for(request.user, team)
    role = membership.role if membership else None
    secrets = (
        Secret.objects.filter(team=team)
        .select_related("updated_by")
        .only("name", "updated_at", "updated_by__username")
    )
    return {
        "team": team,
        "my_role": role,
        "is_owner": Role.at_least(role, Role.OWNER),
        "can_edit": Role.at_least(role, Role.EDITOR),
        "members": members.members(team),
        "roles": Role.choices,
        "secrets": [
            {"name": s.name, "updated_at": s.updated_at, "updated_by": s.updated_by} for s in secrets
        ],
        "variables": [
            (name, variables.format_value(v)) for name, v in sorted(variables.team_variables(team).items())
        ],
        "invitations": invitations.pending(team) if Role.at_least(role, Role.OWNER) else [],
        "limits": run_limits(team),
        "limits_form": RunLimitsForm(instance=team),
        **extra,
    }


def _section(
    request: HtmxHttpRequest, team: Team, section: str, error: str = "", notice: str = ""
) -> HttpResponse:
    """The changed section as an htmx partial, or a redirect back to the settings page with a message."""
    if request.htmx:
        context = _settings_context(request, team, **{f"{section}_error": error, f"{section}_notice": notice})
        return render(request, f"{SETTINGS_TEMPLATE}#{section}", context)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect(reverse("designer-team-settings", kwargs={"team": team.slug}) + f"#{section}")


# ---- my teams -------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request: HtmxHttpRequest) -> HttpResponse:
    """The teams I belong to (the switcher's full page) and a form to create a team."""
    error = ""
    if request.method == "POST":
        try:
            team = members.create_team(request.POST.get("name", ""), request.user)
        except members.MembershipError as exc:
            error = str(exc)
        else:
            activity.record(team, request.user, "created", team, object_type="team")
            messages.success(request, f"Team {team.name} created: you are its owner.")
            return redirect("designer-library", team=team.slug)
    return render(request, "teams/list.html", {"teams": members.user_teams(request.user), "error": error})


# ---- team settings ----------------------------------------------------------------------------------------


@login_required
@require_GET
def team_settings(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Members and roles, secrets (names only) and team variables; owners and editors get the forms."""
    obj = get_team_for(request, team)
    return render(request, SETTINGS_TEMPLATE, _settings_context(request, obj))


@login_required
@require_POST
def team_delete(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Owner: delete the team with everything in it, once its name is typed to confirm."""
    obj = get_team_for(request, team, Role.OWNER)
    if request.POST.get("confirm", "").strip() != obj.name:
        return _section(request, obj, "danger", error=f"Type the team's name, {obj.name}, to delete it.")
    name = obj.name
    obj.delete()
    messages.success(request, f"Team {name} and everything in it were deleted.")
    return go_to(request, reverse("designer-teams"))


@login_required
@require_POST
def member_add(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Owner: add an existing user by username or e-mail, with a role."""
    obj = get_team_for(request, team, Role.OWNER)
    try:
        membership = members.add_member(
            obj, request.POST.get("identifier", ""), request.POST.get("role", "viewer")
        )
    except members.MembershipError as exc:
        return _section(request, obj, "members", error=str(exc))
    name = membership.user.get_username()
    activity.record(
        obj, request.user, "added_member", object_type="user", object_name=name, detail=membership.role
    )
    return _section(request, obj, "members", notice=f"{name} added as {membership.role}.")


def _membership(team: Team, member: int) -> Membership:
    membership = Membership.objects.filter(team=team, pk=member).select_related("user", "team").first()
    if membership is None:
        raise Http404("No such member")
    return membership


@login_required
@require_POST
def member_role(request: HtmxHttpRequest, team: str, member: int) -> HttpResponse:
    """Owner: change a member's role (the last owner cannot be demoted)."""
    obj = get_team_for(request, team, Role.OWNER)
    membership = _membership(obj, member)
    try:
        members.change_role(membership, request.POST.get("role", ""))
    except members.MembershipError as exc:
        return _section(request, obj, "members", error=str(exc))
    request.user._pipedeck_memberships = {}  # type: ignore[union-attr]  # my own role may have changed
    name = membership.user.get_username()
    activity.record(
        obj, request.user, "changed_role", object_type="user", object_name=name, detail=membership.role
    )
    return _section(request, obj, "members", notice=f"{name} is now {membership.role}.")


@login_required
@require_POST
def member_remove(request: HtmxHttpRequest, team: str, member: int) -> HttpResponse:
    """Owner: remove a member (the last owner cannot be removed)."""
    obj = get_team_for(request, team, Role.OWNER)
    membership = _membership(obj, member)
    name = membership.user.get_username()
    try:
        members.remove_member(membership)
    except members.MembershipError as exc:
        return _section(request, obj, "members", error=str(exc))
    activity.record(obj, request.user, "removed_member", object_type="user", object_name=name)
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {obj.name}.")
        return go_to(request, reverse("designer-teams"))
    return _section(request, obj, "members", notice=f"{name} removed.")


@login_required
@require_POST
def secret_set(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Owner: set or replace a secret. The value is encrypted at once and never shown again."""
    obj = get_team_for(request, team, Role.OWNER)
    name = request.POST.get("name", "").strip()
    try:
        _, created = team_secrets.set_secret(obj, name, request.POST.get("value", ""), request.user)
    except ValidationError as exc:
        return _section(
            request, obj, "secrets", error=f"Secret '{name}' was not saved: {' '.join(exc.messages)}"
        )
    activity.record(
        obj,
        request.user,
        "set_secret",
        object_type="secret",
        object_name=name,
        detail="created" if created else "replaced",
    )
    verb = "saved" if created else "replaced"
    return _section(
        request, obj, "secrets", notice=f"Secret {name} {verb}. Its value will not be shown again."
    )


@login_required
@require_POST
def secret_delete(request: HtmxHttpRequest, team: str, name: str) -> HttpResponse:
    """Owner: delete a secret."""
    obj = get_team_for(request, team, Role.OWNER)
    if not team_secrets.delete_secret(obj, name):
        raise Http404("No such secret")
    activity.record(obj, request.user, "deleted_secret", object_type="secret", object_name=name)
    return _section(request, obj, "secrets", notice=f"Secret {name} deleted.")


@login_required
@require_POST
def limits_set(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Owner: the limits of the team's runs (blank: the site's default), within the site's maximum."""
    obj = get_team_for(request, team, Role.OWNER)
    form = RunLimitsForm(request.POST, instance=obj)
    if not form.is_valid():
        if request.htmx:
            context = _settings_context(request, obj, limits_form=form, limits_error="Limits not saved.")
            return render(request, f"{SETTINGS_TEMPLATE}#limits", context)
        return _section(request, obj, "limits", error="Limits not saved: " + form.errors.as_text())
    form.save()
    activity.record(obj, request.user, "set_run_limits", object_type="team", object_name=obj.name)
    return _section(
        request, obj, "limits", notice="Run limits saved; they apply to runs started from now on."
    )


@login_required
@require_POST
def variable_set(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Editor: set a team variable (the value is read as JSON when it parses, else as text)."""
    obj = get_team_for(request, team, Role.EDITOR)
    name = request.POST.get("name", "").strip()
    value = variables.parse_value(request.POST.get("value", ""))
    try:
        variables.set_variable(obj, None, name, value, request.user)
    except ValidationError as exc:
        return _section(
            request, obj, "variables", error=f"Variable '{name}' was not saved: {' '.join(exc.messages)}"
        )
    activity.record(obj, request.user, "set_variable", object_type="variable", object_name=name)
    return _section(request, obj, "variables", notice=f"Variable {name} saved.")


@login_required
@require_POST
def variable_delete(request: HtmxHttpRequest, team: str, name: str) -> HttpResponse:
    """Editor: delete a team variable."""
    obj = get_team_for(request, team, Role.EDITOR)
    if not variables.delete_variable(obj, None, name):
        raise Http404("No such variable")
    activity.record(obj, request.user, "deleted_variable", object_type="variable", object_name=name)
    return _section(request, obj, "variables", notice=f"Variable {name} deleted.")


# ---- project variables ------------------------------------------------------------------------------------


def _project_variables_response(
    request: HtmxHttpRequest, project: Project, error: str = "", notice: str = ""
) -> HttpResponse:
    membership = membership_for(request.user, project.team)
    context = {
        "team": project.team,
        "project": project,
        "can_edit": membership is not None and Role.at_least(membership.role, Role.EDITOR),
        "rows": [(n, variables.format_value(v), src) for n, v, src in variables.variable_sources(project)],
        "project_names": set(variables.project_variables(project)),
        "error": error,
        "notice": notice,
    }
    template = "teams/project_variables.html"
    return render(request, template + "#table" if request.htmx else template, context)


@login_required
@require_http_methods(["GET", "POST"])
def project_variables(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """The project's effective variables with where each comes from; editors set project variables."""
    if request.method == "GET":
        return _project_variables_response(request, get_project_for(request, team, project))
    obj = get_project_for(request, team, project, Role.EDITOR)
    name = request.POST.get("name", "").strip()
    try:
        variables.set_variable(
            obj.team, obj, name, variables.parse_value(request.POST.get("value", "")), request.user
        )
    except ValidationError as exc:
        return _project_variables_response(
            request, obj, error=f"Variable '{name}' was not saved: {' '.join(exc.messages)}"
        )
    activity.record(
        obj.team, request.user, "set_variable", object_type="variable", object_name=f"{obj.name}: {name}"
    )
    return _project_variables_response(request, obj, notice=f"Variable {name} saved for {obj.name}.")


@login_required
@require_POST
def project_variable_delete(request: HtmxHttpRequest, team: str, project: str, name: str) -> HttpResponse:
    """Editor: delete a project variable (the team's value, if any, applies again)."""
    obj = get_project_for(request, team, project, Role.EDITOR)
    if not variables.delete_variable(obj.team, obj, name):
        raise Http404("No such variable")
    activity.record(
        obj.team, request.user, "deleted_variable", object_type="variable", object_name=f"{obj.name}: {name}"
    )
    return _project_variables_response(request, obj, notice=f"Variable {name} deleted from {obj.name}.")


# ---- activity ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def team_activity(request: HtmxHttpRequest, team: str) -> HttpResponse:
    """Who created, changed, imported, ran and deleted what in the team."""
    obj = get_team_for(request, team)
    template = "teams/activity.html"
    context = {"team": obj, "events": activity.feed(obj, limit=200)}
    return render(request, template + "#feed" if request.htmx else template, context)
