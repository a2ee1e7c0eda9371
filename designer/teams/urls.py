"""URL routes of teams: settings (members, secrets, variables), activity, library, templates, copies."""

from __future__ import annotations

from django.urls import include, path

from designer.teams.views import library, teams

team_urls = [
    path("settings/", teams.team_settings, name="designer-team-settings"),
    path("delete/", teams.team_delete, name="designer-team-delete"),
    path("members/add/", teams.member_add, name="designer-team-member-add"),
    path("members/<int:member>/role/", teams.member_role, name="designer-team-member-role"),
    path("members/<int:member>/remove/", teams.member_remove, name="designer-team-member-remove"),
    path("secrets/", teams.secret_set, name="designer-team-secret-set"),
    path("secrets/<str:name>/delete/", teams.secret_delete, name="designer-team-secret-delete"),
    path("limits/", teams.limits_set, name="designer-team-limits-set"),
    path("variables/", teams.variable_set, name="designer-team-variable-set"),
    path("variables/<str:name>/delete/", teams.variable_delete, name="designer-team-variable-delete"),
    path("activity/", teams.team_activity, name="designer-team-activity"),
    path("library/", library.library_page, name="designer-library"),
]

project_urls = [
    path("-/variables/", teams.project_variables, name="designer-project-variables"),
    path(
        "-/variables/<str:name>/delete/",
        teams.project_variable_delete,
        name="designer-project-variable-delete",
    ),
]

pipeline_urls = [
    path("template/", library.pipeline_template, name="designer-pipeline-template"),
    path("use/", library.template_use, name="designer-template-use"),
    path("copy/", library.pipeline_copy, name="designer-pipeline-copy"),
]

urlpatterns = [
    path("teams/", teams.team_list, name="designer-teams"),
    path("t/<slug:team>/", include(team_urls)),
    path("p/<slug:team>/<slug:project>/", include(project_urls)),
    path("p/<slug:team>/<slug:project>/<str:pipeline>/", include(pipeline_urls)),
]
