"""Step outputs: what keeping them costs, and how fast a preview answers.

O1: W4 (``bench.w4_orders``: a 1,000,000-row CSV -> filter_rows -> with_columns -> PostgreSQL), run
    in-process by the CLI's ``main`` without and with ``--keep-outputs`` (each step's table written as
    Parquet, the summaries made from them), interleaved. Goal: keeping costs at most 25% more wall time.
    Both sides check the loaded table (rows and checksums); the kept side also checks the last kept file
    (what load received: same rows, same sum of ids).
O2: a preview of the first transform step through the web app, as the editor's Preview button does it: the
    POST to a live Daphne (its embedded worker, the run's child process, the summary stored) until the
    output panel shows the table (polled every 20 ms; the page polls every 250 ms). On W4's pipeline (its
    1M-row CSV, read with the preview's 1,000-row limit) and on the demo's ``orders_etl`` (CSV + SQLite,
    joined). Goal: under 2 s. Each checks the table's row count against Polars on the same first rows.

``python -m bench outputs`` (``--quick``: 100,000 rows, fewer rounds).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import BenchRow, against, check, interleaved, login_session, under

ROOT = Path(__file__).resolve().parent.parent
PREVIEW_ROWS = 1000


# -- O1: W4 with and without kept outputs -------------------------------------------------------------------


def _w4_once(yaml_path: Path, want: tuple[Any, ...], kept: Path | None) -> float:
    from bench import w4_orders
    from orchestrator.cli import main

    w4_orders._pg("DROP TABLE IF EXISTS w4_orders")
    if kept is not None:
        shutil.rmtree(kept, ignore_errors=True)
    args = ["run", str(yaml_path)] + (["--keep-outputs", str(kept)] if kept is not None else [])
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(args)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"W4 run failed: {out.getvalue()[-800:]}")
    w4_orders._check_table("w4_orders", want)
    if kept is not None:
        _check_kept(kept / "w4_orders", want)
    return elapsed


def _check_kept(folder: Path, want: tuple[Any, ...]) -> None:
    """The last kept table is what load received: the loaded rows and ids."""
    import polars as pl

    manifest = json.loads((folder / "manifest.json").read_text())
    check("kept manifest status", manifest["status"], "succeeded")
    last = pl.scan_parquet(folder / manifest["steps"]["transform.eur"]["file"])
    rows, ids = last.select(pl.len(), pl.col("id").sum()).collect().row(0)
    check("kept rows of transform.eur", rows, want[0])
    check("kept sum(id) of transform.eur", ids, int(want[1]))


def bench_keeping(quick: bool) -> list[BenchRow]:
    from bench import w4_orders

    rows = 100_000 if quick else 1_000_000
    csv = w4_orders.orders_csv(rows)
    want = w4_orders.expected(csv)
    yaml_path = w4_orders.DATA / "w4_outputs.yaml"
    yaml_path.write_text(w4_orders.project_yaml(csv, "w4_orders"))
    kept = w4_orders.DATA / "kept-outputs"
    os.environ["PIPEDECK_DATA_ROOT"] = str(w4_orders.DATA)
    _w4_once(yaml_path, want, kept)  # warm-up: imports, the first COPY, the first Parquet
    figures = interleaved(
        3 if quick else 7,
        {"plain": lambda: _w4_once(yaml_path, want, None), "kept": lambda: _w4_once(yaml_path, want, kept)},
    )
    size = sum(p.stat().st_size for p in kept.rglob("*.parquet"))
    shutil.rmtree(kept, ignore_errors=True)
    w4_orders._pg("DROP TABLE IF EXISTS w4_orders")
    label = f"O1 W4 {rows:,} rows, in-process, keeping outputs"
    return [
        against(
            label,
            "s",
            figures["kept"],
            "without keeping",
            figures["plain"],
            at_most=1.25,
            note=f"3 Parquet files kept per run, {size / 2**20:.0f} MiB",
        )
    ]


# -- O2: a preview's latency through the web app ------------------------------------------------------------


def _django(data_root: Path) -> None:
    os.environ["PIPEDECK_DATA_ROOT"] = str(data_root)
    from bench.runs import _setup_django

    _setup_django()


def _w4_pipeline(csv: Path) -> tuple[str, str, str, int]:
    """A team with W4's pipeline (its CSV in the team's data root); (team, project, pipeline, the rows
    the preview of its first transform step must show)."""
    import polars as pl
    from django.contrib.auth.models import User

    from bench.w4_orders import RATE
    from designer.editor import pipelines as service
    from designer.editor.models import Pipeline, Project
    from designer.runs.isolation import team_data_root
    from designer.teams.models import Membership, Team

    suffix = str(int(time.time() * 1000))
    user = User.objects.create_user(f"preview{suffix}", password=None)
    team = Team.objects.create(name=f"Preview {suffix}", slug=f"preview-{suffix}")
    Membership.objects.create(team=team, user=user, role="owner")
    project = Project.objects.create(team=team, name="w4", slug="w4")
    target = team_data_root(team) / csv.name
    try:
        os.link(csv, target)
    except OSError:
        shutil.copyfile(csv, target)
    spec = {
        "type": "ETL",
        "phases": {
            "extract": {"steps": [{"id": "orders", "plugin": "csv_extract", "args": {"path": csv.name}}]},
            "transform": {
                "steps": [
                    {"id": "big_only", "plugin": "filter_rows", "args": {"expr": "amount > 10"}},
                    {
                        "id": "eur",
                        "plugin": "with_columns",
                        "args": {"columns": {"amount_eur": f"amount * {RATE}"}},
                    },
                ]
            },
            "load": {"steps": [{"id": "rows", "plugin": "csv_load", "args": {"path": "out/w4.csv"}}]},
        },
    }
    pipeline = Pipeline.objects.create(project=project, name="w4_orders", slug="w4-orders")
    service.store(pipeline, spec)
    want = pl.scan_csv(csv, n_rows=PREVIEW_ROWS).filter(pl.col("amount") > 10).collect().height
    return login_session(user), f"{team.slug}/w4/w4_orders", "transform.big_only", want


def _demo_pipeline() -> tuple[str, str, str, int]:
    """The demo (``manage.py seed_demo``); the same for its orders_etl's first transform step."""
    import polars as pl
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from designer.demo import DEMO_PROJECT, DEMO_TEAM
    from designer.runs.isolation import team_data_root
    from designer.teams.models import Team

    with contextlib.redirect_stdout(io.StringIO()):
        call_command("seed_demo")
    root = team_data_root(Team.objects.get(slug=DEMO_TEAM[1]))
    orders = pl.read_csv(root / "orders.csv", n_rows=PREVIEW_ROWS)
    customers = pl.read_csv(root / "customers.csv", n_rows=PREVIEW_ROWS)
    joined = orders.join(customers, on="customer_id", how="inner").filter(pl.col("amount") > 10)
    user = User.objects.get(username="demo")
    return (
        login_session(user),
        f"{DEMO_TEAM[1]}/{DEMO_PROJECT[1]}/orders_etl",
        "transform.big_orders",
        joined.height,
    )


def _preview_once(server: Any, session: str, where: str, key: str, want: int) -> float:
    """Seconds from the Preview POST to the output panel holding the table; checks its row count."""
    import httpx

    phase, _, step = key.partition(".")
    with httpx.Client(base_url=server.url, cookies={"sessionid": session}, timeout=30) as client:
        client.get(f"/p/{where}/")  # sets the CSRF cookie
        token = client.cookies["csrftoken"]
        headers = {"HX-Request": "true", "X-CSRFToken": token}
        started = time.perf_counter()
        html = client.post(f"/p/{where}/-/preview/", data={"phase": phase, "id": step}, headers=headers).text
        while 'data-testid="output-waiting"' in html:
            found = re.search(r'hx-get="([^"]+)"', html)
            if found is None or time.perf_counter() - started > 30:
                raise RuntimeError(f"the preview did not answer: {html[:500]}")
            time.sleep(0.02)
            html = client.get(found.group(1).replace("&amp;", "&"), headers=headers).text
        elapsed = time.perf_counter() - started
    rows = re.search(r'data-rows="(\d+)"', html)
    check(f"rows of the preview of {where} {key}", int(rows.group(1)) if rows else html[:300], want)
    return elapsed


def bench_preview(quick: bool) -> list[BenchRow]:
    from bench import w4_orders
    from bench.runs import LiveServer, embedded_env

    csv = w4_orders.orders_csv(100_000 if quick else 1_000_000)
    data_root = Path(tempfile.mkdtemp(prefix="pipedeck-bench-outputs-"))
    _django(data_root)
    from django.conf import settings

    check("preview rows setting", settings.PIPEDECK_PREVIEW_ROWS, PREVIEW_ROWS)
    w4 = _w4_pipeline(csv)
    demo = _demo_pipeline()
    db = Path(settings.DATABASES["default"]["NAME"])
    server = LiveServer({**embedded_env(db), "PIPEDECK_DATA_ROOT": str(data_root)})
    try:
        for target in (w4, demo):
            _preview_once(server, *target)  # warm-up: the worker and its fork server start
        figures = interleaved(
            5 if quick else 15,
            {"w4": lambda: _preview_once(server, *w4), "demo": lambda: _preview_once(server, *demo)},
        )
    finally:
        server.stop()
        shutil.rmtree(data_root, ignore_errors=True)
    return [
        under(
            f"O2 preview of W4's first transform step ({csv.stat().st_size // 2**20} MB CSV, "
            "1,000-row limit), POST -> table",
            "s",
            figures["w4"],
            2.0,
        ),
        under(
            "O2 preview of the demo's first transform step (CSV + SQLite, joined)", "s", figures["demo"], 2.0
        ),
    ]


def run(quick: bool = False) -> list[BenchRow]:
    """Rows for ``python -m bench``."""
    return bench_keeping(quick) + bench_preview(quick)


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
