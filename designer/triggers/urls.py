"""URL routes of triggers: the project's triggers page, parameters, the Run form, schedules, backfills,
webhooks (and their public endpoint), alert destinations, the team's schedules."""

from __future__ import annotations

from django.urls import include, path

from designer.triggers.views import alerts, backfills, hooks, pages, parameters, run_form, schedules, webhooks

project_urls = [
    path("triggers/", pages.triggers_page, name="designer-project-triggers"),
    path("run-with/", run_form.run_form, name="designer-run-form"),
    path("triggers/parameters/", parameters.parameter_set, name="designer-parameter-set"),
    path(
        "triggers/parameters/<str:name>/delete/",
        parameters.parameter_delete,
        name="designer-parameter-delete",
    ),
    path("triggers/schedules/new/", schedules.schedule_new, name="designer-schedule-create"),
    path("triggers/schedules/preview/", schedules.schedule_preview, name="designer-schedule-preview"),
    path("triggers/schedules/<int:schedule_id>/", schedules.schedule_page, name="designer-schedule"),
    path(
        "triggers/schedules/<int:schedule_id>/pause/",
        schedules.schedule_pause,
        name="designer-schedule-pause",
    ),
    path(
        "triggers/schedules/<int:schedule_id>/delete/",
        schedules.schedule_delete,
        name="designer-schedule-delete",
    ),
    path(
        "triggers/schedules/<int:schedule_id>/backfill/",
        backfills.backfill_create,
        name="designer-backfill-create",
    ),
    path("triggers/backfills/<int:backfill_id>/", backfills.backfill_page, name="designer-backfill"),
    path(
        "triggers/backfills/<int:backfill_id>/retry/",
        backfills.backfill_retry,
        name="designer-backfill-retry",
    ),
    path("triggers/webhooks/", webhooks.webhook_create, name="designer-webhook-create"),
    path(
        "triggers/webhooks/<int:webhook_id>/rotate/", webhooks.webhook_rotate, name="designer-webhook-rotate"
    ),
    path(
        "triggers/webhooks/<int:webhook_id>/delete/", webhooks.webhook_delete, name="designer-webhook-delete"
    ),
    path("triggers/alerts/", alerts.alert_create, name="designer-alert-create"),
    path("triggers/alerts/<int:destination_id>/test/", alerts.alert_test, name="designer-alert-test"),
    path("triggers/alerts/<int:destination_id>/delete/", alerts.alert_delete, name="designer-alert-delete"),
]

urlpatterns = [
    path("p/<slug:team>/<slug:project>/-/", include(project_urls)),
    path("t/<slug:team>/schedules/", pages.team_schedules, name="designer-team-schedules"),
    path("hooks/<str:hook>/", hooks.hook, name="designer-hook"),
]
