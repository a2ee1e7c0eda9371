"""Page speed of the designer: the editor of a 100-step pipeline, and saving one change (server time).

Targets (issue 4): render < 150 ms, save < 50 ms; medians of in-process requests with Django's test client
against a throwaway SQLite database. ``python -m bench pages`` or ``python bench/pages.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import BenchRow, under

STEPS = 100


def _setup_django(db_path: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "designer.settings")
    os.environ["PIPEDECK_SQLITE"] = str(db_path)
    import django
    from django.conf import settings

    if not settings.configured or not getattr(settings, "_pipedeck_bench", False):
        django.setup()
        settings._pipedeck_bench = True  # type: ignore[attr-defined]
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # Django's test client's host
        # the bench's users are made, not logged in by hand: hashing 1M+ iterations would be its cost
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _big_spec(steps: int) -> dict[str, Any]:
    transforms = [
        {"id": f"keep_{i}", "plugin": "filter_rows", "args": {"expr": f"amount > {i}"}}
        for i in range(steps - 2)
    ]
    return {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "read", "plugin": "csv_extract", "args": {"path": "orders.csv"}}]},
            "transform": {"steps": transforms},
            "load": {"steps": [{"id": "write", "plugin": "csv_load", "args": {"path": "out/o.csv"}}]},
        },
    }


def _median_ms(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``call`` (CPU time is steadier on a busy machine)."""
    call()  # warm up (template loading, plugin registry)
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def measure(repeat: int = 20) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) ms: ``render`` (editor page), ``save`` (one step's args), ``move`` (reorder)."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from designer.editor import pipelines as service
    from designer.editor.models import Pipeline, Project
    from designer.teams.models import Membership, Team

    user = User.objects.create_user("bench", password="bench")
    team = Team.objects.create(name="Bench", slug="bench")
    Membership.objects.create(team=team, user=user, role="owner")
    project = Project.objects.create(team=team, name="Bench", slug="bench")
    pipeline = Pipeline(project=project, name="big", slug="big")
    service.store(pipeline, _big_spec(STEPS))
    assert pipeline.is_valid, pipeline.errors
    client = Client()
    client.force_login(user)
    kwargs = {"team": "bench", "project": "bench", "pipeline": "big"}
    hx = {"HTTP_HX_REQUEST": "true"}
    editor_url = reverse("designer-editor", kwargs=kwargs)
    args_url = reverse("designer-step-args", kwargs=kwargs)
    move_url = reverse("designer-step-move", kwargs=kwargs)
    counter = iter(range(10**6))

    def render() -> None:
        assert client.get(editor_url).status_code == 200

    def save() -> None:
        data = {"phase": "transform", "id": "keep_50", "arg-expr": f"amount > {next(counter)}"}
        assert client.post(args_url, data, **hx).status_code == 200

    def move() -> None:
        data = {
            "phase": "transform",
            "id": "keep_0",
            "slot": "steps",
            "to_phase": "transform",
            "to_slot": "steps",
        }
        data["to_index"] = 97
        assert client.post(move_url, data, **hx).status_code == 200

    return {
        "render": _median_ms(render, repeat),
        "save": _median_ms(save, repeat),
        "move": _median_ms(move, repeat),
    }


def run(quick: bool = False) -> list[BenchRow]:
    """Rows for ``python -m bench``."""
    with tempfile.TemporaryDirectory() as tmp:
        _setup_django(Path(tmp) / "bench.sqlite3")
        result = measure(repeat=5 if quick else 20)
    rows = []
    for key, label, limit in [
        ("render", f"designer: editor page, {STEPS} steps", 150),
        ("save", f"designer: save a step's args, {STEPS} steps", 50),
        ("move", f"designer: reorder a step, {STEPS} steps", 50),
    ]:
        wall, cpu = result[key]
        rows.append(under(f"{label} (median wall)", "ms", [wall], limit))
        rows.append(under(f"{label} (median CPU)", "ms", [cpu], limit))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row.workload}: {row.figure:.1f} {row.unit} (target {row.target})")
