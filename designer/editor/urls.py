"""URL routes of the editor: projects, pipelines and the editor's actions."""

from __future__ import annotations

from django.urls import include, path

from designer.editor.views import drafts, editor, pipelines, projects

project_urls = [
    path("-/new-project/", projects.project_create, name="designer-project-create"),
    path("<slug:project>/", projects.project_detail, name="designer-project"),
    path("<slug:project>/-/graph.json", projects.project_graph, name="designer-project-graph"),
    path("<slug:project>/-/needs/", projects.project_needs, name="designer-project-needs"),
    path("<slug:project>/-/settings/", projects.project_settings, name="designer-project-settings"),
    path("<slug:project>/project.yaml", projects.project_download, name="designer-project-download"),
    path("<slug:project>/-/upload/", projects.project_upload, name="designer-project-upload"),
    path("<slug:project>/-/new-pipeline/", pipelines.pipeline_create, name="designer-pipeline-create"),
]

pipeline_urls = [
    path("", editor.editor, name="designer-editor"),
    path("canvas/", editor.canvas, name="designer-editor-canvas"),
    path("steps/add/", editor.step_add, name="designer-step-add"),
    path("steps/move/", editor.step_move, name="designer-step-move"),
    path("steps/remove/", editor.step_remove, name="designer-step-remove"),
    path("steps/form/", editor.step_form, name="designer-step-form"),
    path("steps/args/", editor.step_args, name="designer-step-args"),
    path("type/", editor.set_type, name="designer-set-type"),
    path("merge/", editor.set_merge, name="designer-set-merge"),
    path("details/", editor.set_details, name="designer-set-details"),
    path("yaml/", drafts.yaml_tab, name="designer-yaml"),
    path("save/", drafts.save_version, name="designer-save"),
    path("undo/", drafts.undo, name="designer-undo"),
    path("redo/", drafts.redo, name="designer-redo"),
    path("discard/", drafts.discard, name="designer-discard"),
    path("history/", pipelines.history, name="designer-history"),
    path("diff/", pipelines.diff, name="designer-diff"),
    path("restore/<int:number>/", pipelines.restore, name="designer-restore"),
    path("pipeline.yaml", pipelines.pipeline_download, name="designer-pipeline-download"),
    path("delete/", pipelines.pipeline_delete, name="designer-pipeline-delete"),
]


urlpatterns = [
    path("p/<slug:team>/", include(project_urls)),
    path("p/<slug:team>/<slug:project>/<str:pipeline>/", include(pipeline_urls)),
]
