"""URL routes of runs: start, detail, events, cancel / re-run / retry, the team's dashboard."""

from __future__ import annotations

from django.urls import path

from designer.runs import views as runs

urlpatterns = [
    path("p/<slug:team>/<slug:project>/-/run/", runs.run_start, name="designer-run-start"),
    path("t/<slug:team>/runs/", runs.runs_dashboard, name="designer-runs"),
    path("t/<slug:team>/runs/start/", runs.team_run_start, name="designer-runs-start"),
    path("runs/<int:run_id>/", runs.run_detail, name="designer-run"),
    path("runs/<int:run_id>/events/", runs.run_events, name="designer-run-events"),
    path("runs/<int:run_id>/cancel/", runs.run_cancel, name="designer-run-cancel"),
    path("runs/<int:run_id>/rerun/", runs.run_rerun, name="designer-run-rerun"),
]
