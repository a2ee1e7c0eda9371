"""Settings of the test suite: Pipedeck's own, with fixed test keys, fast password hashing, a SQLite file
per test session and no worker inside the test process (tests start the workers they need)."""

from __future__ import annotations

import os
from pathlib import Path

# Test keys, set before the settings read them (no development key files, no warnings): never real ones.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-django-secret-key-not-for-any-real-site-00000000")
os.environ.setdefault("PIPEDECK_SECRET_KEYS", "dGVzdHMtb25seS1mZXJuZXQta2V5LW5vdC1yZWFsISE=")
# Without WAL: a live-server child forked with the parent's connection open lost sight of its writes.
os.environ.setdefault("PIPEDECK_SQLITE_WAL", "false")
# The test process runs no worker of its own; the live servers tests start ask for one (their environment).
os.environ.setdefault("PIPEDECK_INPROCESS_WORKER", "false")

from designer.settings import *  # noqa: E402,F403
from designer.settings import BASE_DIR, DATABASES  # noqa: E402

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405 - Django's test client's host
# Hashing with 1M+ iterations would dominate the suite's time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so a live Daphne child process sees the same test database; one per test
    # session (child processes inherit the name through the environment), so sessions never collide.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.setdefault(
            "PIPEDECK_TEST_DB", str(Path(BASE_DIR) / f"test-db-{os.getpid()}.sqlite3")
        )
    }
