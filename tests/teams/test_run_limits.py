"""Run limits: an owner sets their team's, within the site's maximum; runs get them."""

from __future__ import annotations

from designer.runs.isolation import run_limits


def test_an_owner_sets_run_limits_within_the_sites_maximum(crew, settings):  # type: ignore[no-untyped-def]
    settings.PIPEDECK_RUN_LIMITS_MAX = {**settings.PIPEDECK_RUN_LIMITS_MAX, "memory_mib": 2048}
    owner = crew.client("owner")
    response = owner.post("/t/acme/limits/", {"run_memory_mib": "4096"}, HTTP_HX_REQUEST="true")
    assert b"Limits not saved." in response.content
    assert b"Ensure this value is less than or equal to 2048." in response.content
    crew.team.refresh_from_db()
    assert crew.team.run_memory_mib is None
    response = owner.post(
        "/t/acme/limits/", {"run_memory_mib": "1024", "run_cpu_seconds": "60"}, HTTP_HX_REQUEST="true"
    )
    assert b"Run limits saved" in response.content
    assert b'data-limit="memory_mib">1024 MiB' in response.content
    crew.team.refresh_from_db()
    assert (crew.team.run_memory_mib, crew.team.run_cpu_seconds) == (1024, 60)
    limits = run_limits(crew.team)
    assert (limits.memory_mib, limits.cpu_seconds, limits.open_files) == (1024, 60, 256)
    assert crew.client("editor").post("/t/acme/limits/", {"run_memory_mib": "1"}).status_code == 404
