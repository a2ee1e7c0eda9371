"""Webhooks: create one (its token shown once), rotate its token, delete it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from designer.teams.models import Role
from designer.triggers import forms, webhooks
from designer.triggers.models import Webhook
from designer.triggers.parameters import InvalidValues
from designer.triggers.views.access import get_webhook_for, pipeline_names
from designer.triggers.views.pages import triggers_context
from designer.web import HtmxHttpRequest, get_project_for


def _shown_once(request: HtmxHttpRequest, webhook: Webhook, token: str, signing: str = "") -> HttpResponse:
    """The page holding the token (and signing secret): rendered in the answer itself, never stored."""
    url = request.build_absolute_uri(webhook.path())
    context: dict[str, Any] = {
        "team": webhook.team,
        "project": webhook.project,
        "webhook": webhook,
        "url": url,
        "token": token,
        "signing": signing,
        "example_body": '{"' + '": ..., "'.join(webhook.mapping) + '": ...}' if webhook.mapping else "{}",
    }
    return render(request, "triggers/webhook_token.html", context)


@never_cache
@login_required
@require_POST
def webhook_create(request: HtmxHttpRequest, team: str, project: str) -> HttpResponse:
    """A new webhook; the answer shows its URL and token (and signing secret) once."""
    project_obj = get_project_for(request, team, project, Role.EDITOR)
    form = forms.WebhookForm(request.POST, pipelines=pipeline_names(project_obj))
    if form.is_valid():
        data = form.cleaned_data
        try:
            webhook, token, signing = webhooks.create_webhook(
                project_obj,
                data["name"],
                pipeline=data["pipeline"],
                mapping=webhooks.parse_mapping(data["mapping"]),
                rate_limit=data["rate_limit"],
                signed=data["signed"],
                user=request.user,
            )
        except webhooks.WebhookProblem as exc:
            forms.add_problem(form, exc.field, str(exc))
        except InvalidValues as exc:
            form.add_error(None, str(exc))
        else:
            return _shown_once(request, webhook, token, signing)
    context = triggers_context(request, project_obj, webhook_form=form)
    return render(request, "triggers/project.html", context, status=400)


@never_cache
@login_required
@require_POST
def webhook_rotate(request: HtmxHttpRequest, team: str, project: str, webhook_id: int) -> HttpResponse:
    """A new token (the old one stops working now), shown once."""
    webhook = get_webhook_for(request, team, project, webhook_id)
    return _shown_once(request, webhook, webhooks.rotate(webhook, request.user))


@login_required
@require_POST
def webhook_delete(request: HtmxHttpRequest, team: str, project: str, webhook_id: int) -> HttpResponse:
    webhook = get_webhook_for(request, team, project, webhook_id)
    webhooks.delete_webhook(webhook, request.user)
    return redirect(
        reverse("designer-project-triggers", kwargs={"team": team, "project": project}) + "#webhooks"
    )
