"""URL routes of runs: start, detail, events, cancel / re-run / retry, the team's dashboard."""

from __future__ import annotations

from django.urls import path

from designer.runs import output_views as outputs, views as runs

urlpatterns = [
    path("p/<slug:team>/<slug:project>/-/run/", runs.run_start, name="designer-run-start"),
    path("t/<slug:team>/runs/", runs.runs_dashboard, name="designer-runs"),
    path("t/<slug:team>/runs/start/", runs.team_run_start, name="designer-runs-start"),
    path("runs/<int:run_id>/", runs.run_detail, name="designer-run"),
    path("runs/<int:run_id>/events/", runs.run_events, name="designer-run-events"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="designer-run-cancel"),
    path("runs/<int:run_id>/rerun/", runs.run_rerun, name="designer-run-rerun"),
    # step outputs: a step's table, resume, the editor's preview and "run from here"
    path("runs/<int:run_id>/output/", outputs.run_output, name="designer-run-output"),
    path("runs/<int:run_id>/resume/", outputs.run_resume, name="designer-run-resume"),
    path(
        "p/<slug:team>/<slug:project>/<str:pipeline>/-/preview/",
        outputs.step_preview,
        name="designer-step-preview",
    ),
    path(
        "p/<slug:team>/<slug:project>/<str:pipeline>/-/run-from/",
        outputs.run_from_step,
        name="designer-run-from",
    ),
]
