"""A hostile author of team Rival against team Acme, through the web app: Django clients, a real worker
in a thread and the real child processes of runs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from designer.editor.models import Pipeline, Project
from designer.runs import launch
from designer.runs.models import Run
from designer.runs.worker import Worker
from designer.teams.models import Membership
from orchestrator.spec import ProjectSpec
from tests.factory import sealed_preview
from tests.teams.conftest import Crew, build_crew

#: how long a test waits for a run to finish before it fails
RUN_DEADLINE = 60.0


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def probe_plugins(settings: Any) -> None:
    """The probe plugin, in this process (validation) and in runs' child processes."""
    from orchestrator.plugins.registry import registry
    from tests.security import probe_plugins as module

    settings.PIPEDECK_PLUGIN_MODULES = [module.__name__]
    registry.load()
    registry.register_module(module)


@pytest.fixture
def worker(transactional_db: Any) -> Iterator[Worker]:
    """A run worker in a background thread, as the web app's embedded one."""
    worker = Worker(worker_id="security-worker", concurrency=2, lease=10, poll=0.05, grace=2)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run()), daemon=True)
    thread.start()
    assert worker.ready.wait(10)
    yield worker
    worker.stop()
    thread.join(15)


@dataclass
class Attack:
    """The outsider (owner of team Rival, project "secret-plans") and the Acme team it goes after."""

    crew: Crew
    client: Client

    @property
    def project(self) -> Project:
        return self.crew.other_project

    def upload(self, text: str) -> str:
        """Upload a project file to Rival's project and apply its preview; the pages' text (errors
        included)."""
        upload = SimpleUploadedFile("attack.yaml", text.encode(), content_type="application/x-yaml")
        response = self.client.post("/p/rival/secret-plans/-/upload/", {"file": upload})
        assert response.status_code in (200, 400), response.status_code
        page = response.content.decode()
        if 'name="sealed"' in page:  # a valid file: its preview, then "Apply import"
            applied = self.client.post("/p/rival/secret-plans/-/upload/", sealed_preview(page), follow=True)
            page += applied.content.decode()
        return page

    def saved(self, name: str) -> bool:
        return Pipeline.objects.filter(project=self.project, name=name).exists()

    def start(self, pipeline: str, variables: str = "") -> Run | str:
        """Press Run: the run, or the refusal's text."""
        response = self.client.post(
            "/p/rival/secret-plans/-/run/",
            {"pipeline": pipeline, "variables": variables},
            HTTP_HX_REQUEST="true",
        )
        if "HX-Redirect" in response:
            return Run.objects.get(pk=int(response["HX-Redirect"].rstrip("/").rsplit("/", 1)[1]))
        return response.content.decode()

    def force(self, text: str, pipeline: str) -> Run:
        """Queue a run of a file the designer refuses (as if it had been saved before the rule existed):
        what the run itself may do, without the editor's checks."""
        from orchestrator.yamlio import load_project

        spec = load_project(text)  # structure only: no plugin, reference or policy checks
        data = ProjectSpec.model_validate(spec.model_dump()).model_dump(mode="json")
        return launch.enqueue(self.project, data, {}, [pipeline], None, self.crew.outsider)


@pytest.fixture
def attack(transactional_db: Any) -> Attack:
    crew = build_crew()
    return Attack(crew, crew.client("outsider"))


def wait(run: Run) -> Run:
    """The run once it finished (fails the test after RUN_DEADLINE seconds)."""
    deadline = time.monotonic() + RUN_DEADLINE
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run.pk} still {run.state} after {RUN_DEADLINE} s")


def everything_of(run: Run) -> str:
    """Every stored event of the run and its error, as one text (to search for leaked values)."""
    events = [json.dumps(payload) for payload in run.events.order_by("seq").values_list("payload", flat=True)]
    return "\n".join([run.error, *events])


def acme_owners(crew: Crew) -> set[str]:
    return set(
        Membership.objects.filter(team=crew.team, role="owner").values_list("user__username", flat=True)
    )
