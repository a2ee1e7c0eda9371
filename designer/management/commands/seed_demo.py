"""``manage.py seed_demo``: the demo user, team, project and pipelines (idempotent; dev only)."""

from __future__ import annotations

import copy
import os
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from designer.demo import (
    DEMO_PARAMETERS,
    DEMO_PIPELINES,
    DEMO_PROJECT,
    DEMO_TEAM,
    DEMO_VARIABLES,
    build_source_db,
)
from designer.editor import pipelines as service
from designer.editor.models import Pipeline, Project
from designer.runs.isolation import team_data_root
from designer.teams import activity
from designer.teams.models import Membership, Team
from designer.triggers.models import RunParameter
from designer.triggers.parameters import set_parameter


class Command(BaseCommand):
    help = "Create the demo user (demo / demo), team, project and three pipelines. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        """Create what is missing; leave what exists (a user's edits to the demo survive)."""
        with transaction.atomic():
            user = User.objects.filter(username="demo").first()
            if user is None:
                user = User.objects.create_user("demo", password="demo")
            team, _ = Team.objects.get_or_create(slug=DEMO_TEAM[1], defaults={"name": DEMO_TEAM[0]})
            build_source_db(team_data_root(team))
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": "owner"})
            project, created = Project.objects.get_or_create(
                team=team,
                slug=DEMO_PROJECT[1],
                defaults={"name": DEMO_PROJECT[0], "variables": DEMO_VARIABLES, "concurrency": 2},
            )
            if created:
                for declared in DEMO_PARAMETERS:
                    if not RunParameter.objects.filter(project=project, name=declared["name"]).exists():
                        set_parameter(project, **declared)
            made = []
            for name in DEMO_PIPELINES:  # create all first: `needs` must name existing pipelines
                if not Pipeline.objects.filter(project=project, name=name).exists():
                    pipeline = Pipeline.objects.create(
                        project=project, name=name, slug=name.replace("_", "-"), created_by=user
                    )
                    activity.pipeline_created(pipeline)
                    made.append(name)
            for name in made:
                pipeline = Pipeline.objects.get(project=project, name=name)
                service.store(pipeline, copy.deepcopy(DEMO_PIPELINES[name]))
                if not pipeline.is_valid:
                    raise RuntimeError(f"demo pipeline {name} does not validate: {pipeline.errors}")
                activity.version_saved(service.save_version(pipeline, user, "Demo pipeline"))
        what = f"created {', '.join(made)}" if made else "already present"
        self.stdout.write(f"Demo project '{project.name}' in team '{team.name}': {what}.")
        port = os.environ.get("PORT", "8000")
        self.stdout.write(self.style.WARNING(f"Log in at http://127.0.0.1:{port}/ as demo / demo (dev only)"))
