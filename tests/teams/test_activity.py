"""The activity feed records what the designer and run views do, with who did it."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from designer.runs.launch import start_run
from designer.teams.models import ActivityEvent
from tests.factory import make_pipeline, make_project, make_team, make_user, sealed_preview


def _feed(team) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    return [
        (e.actor.username if e.actor else "", e.verb, e.object_type, e.object_name)
        for e in ActivityEvent.objects.filter(team=team).order_by("pk")
    ]


def test_project_and_pipeline_actions_are_recorded(db, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ed = make_user("ed")
    team = make_team("Acme", members={ed: "editor"})
    client = Client()
    client.force_login(ed)

    assert client.post("/p/acme/-/new-project/", {"name": "Sales"}).status_code == 302
    assert client.post("/p/acme/sales/-/settings/", {"concurrency": "3"}).status_code == 302
    project_yaml = (
        "pipelines:\n  daily:\n    type: ETL\n    phases:\n"
        "      extract: {steps: [{id: w, plugin: sleep_extract}]}\n"
        "      load: {steps: [{id: s, plugin: sleep_load}]}\n"
    )
    upload = SimpleUploadedFile("sales.yaml", project_yaml.encode())
    preview = client.post("/p/acme/sales/-/upload/", {"file": upload})
    assert preview.status_code == 200
    assert client.post("/p/acme/sales/-/upload/", sealed_preview(preview.content)).status_code == 302
    assert client.post("/p/acme/sales/daily/delete/").status_code == 302

    feed = _feed(team)
    assert ("ed", "created", "project", "Sales") in feed
    assert ("ed", "changed", "project", "Sales") in feed
    assert ("ed", "imported", "project", "Sales") in feed
    assert feed[-1] == ("ed", "deleted", "pipeline", "Sales / daily")


def test_cancelling_a_run_is_recorded(db) -> None:  # type: ignore[no-untyped-def]
    runner = make_user("rita")
    team = make_team("Ops", members={runner: "runner"})
    project = make_project(team, "Nightly")
    make_pipeline(project, "load_it")
    run = start_run(project, runner)
    client = Client()
    client.force_login(runner)

    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 302

    assert ("rita", "cancelled", "run", f"run #{run.pk}") in _feed(team)
