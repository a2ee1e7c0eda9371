"""The documented production environment (deploy/pipedeck.env.example) passes Django's deployment checks
with no warning; the development defaults do not (so the checks do look at what is set)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PIPEDECK_", "DATABASE_"))}
    for line in (ROOT / "deploy" / "pipedeck.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    env["PIPEDECK_SECRET_KEYS"] = Fernet.generate_key().decode()
    env["DJANGO_SETTINGS_MODULE"] = "designer.settings"
    return env


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_production_environment_passes_check_deploy() -> None:
    done = _check(_production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_without_https_the_checks_warn() -> None:
    env = {**_production_env(), "PIPEDECK_HTTPS": "false"}
    for name in ("PIPEDECK_HSTS_SECONDS", "PIPEDECK_HSTS_INCLUDE_SUBDOMAINS", "PIPEDECK_HSTS_PRELOAD"):
        del env[name]
    done = _check(env)
    assert done.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in done.stderr + done.stdout, code
