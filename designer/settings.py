"""Pipedeck settings, read from the environment with safe defaults (see README for the variables)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Classes that django-stubs makes generic (``admin.ModelAdmin[Team]``) can be subscripted at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name: str, default: str = "") -> str:
    """A string setting from the environment."""
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    """A boolean setting: true/false/1/0/yes/no/on/off; anything else raises ImproperlyConfigured."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def envint(name: str, default: int) -> int:
    """An integer setting; a non-integer raises ImproperlyConfigured."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def _dev_warning(message: str) -> None:
    if "pytest" not in sys.modules:
        print(f"WARNING: {message}", file=sys.stderr)


DEBUG = envbool("DJANGO_DEBUG", False)

SECRET_KEY = envstr("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    # Stable per checkout so sessions survive restarts; never use it in production.
    _key_file = BASE_DIR / ".dev-secret-key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        _key_file.write_text(get_random_secret_key())
    SECRET_KEY = _key_file.read_text().strip()
    _dev_warning("DJANGO_SECRET_KEY is not set: using a generated development key (.dev-secret-key).")

ALLOWED_HOSTS = [h.strip() for h in envstr("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")]
ALLOWED_HOSTS = [h for h in ALLOWED_HOSTS if h] + ["testserver"]
CSRF_TRUSTED_ORIGINS = [o for o in envstr("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "designer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "designer.urls"
ASGI_APPLICATION = "designer.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database_from_url(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be postgresql://..., got scheme {parsed.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "pipedeck",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "TEST": {"NAME": "test_pipedeck"},
    }


DATABASE_URL = envstr("DATABASE_URL")
DATABASES: dict[str, dict[str, Any]]
if DATABASE_URL:
    DATABASES = {"default": _database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / envstr("PIPEDECK_SQLITE", "db.sqlite3"),
            # WAL: readers never wait for the writer (web + worker); NORMAL sync is safe with WAL. Not in
            # tests: a live-server child forked with the parent's connection open loses sight of its writes.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                if envbool("PIPEDECK_SQLITE_WAL", "pytest" not in sys.modules)
                else "",
            },
            # A file (not :memory:) so a live Daphne child process sees the same test database; one per
            # test run (child processes inherit the name through the environment), so runs never collide.
            "TEST": {
                "NAME": os.environ.setdefault(
                    "PIPEDECK_TEST_DB", str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")
                )
            },
        }
    }

REDIS_URL = envstr("REDIS_URL")
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

PIPEDECK_INPROCESS_WORKER = envbool("PIPEDECK_INPROCESS_WORKER", True)
PIPEDECK_DATA_ROOT = Path(envstr("PIPEDECK_DATA_ROOT", str(BASE_DIR / "data")))

PIPEDECK_SECRET_KEYS = [k.strip() for k in envstr("PIPEDECK_SECRET_KEYS").split(",") if k.strip()]
if not PIPEDECK_SECRET_KEYS:
    _fernet_file = BASE_DIR / ".dev-fernet-key"
    if not _fernet_file.exists():
        from cryptography.fernet import Fernet

        _fernet_file.write_text(Fernet.generate_key().decode())
    PIPEDECK_SECRET_KEYS = [_fernet_file.read_text().strip()]
    _dev_warning("PIPEDECK_SECRET_KEYS is not set: team secrets use a generated development key.")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if "pytest" in sys.modules or envbool("PIPEDECK_FAST_PASSWORDS", False):
    # Tests (and the live server they start) only: hashing with 1M+ iterations dominates test time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "designer-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
PIPEDECK_SERVE_STATIC = envbool("PIPEDECK_SERVE_STATIC", True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("PIPEDECK_LOG_LEVEL", "WARNING")},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False}},
}

warnings.filterwarnings("ignore", message=".*StreamingHttpResponse.*", module="django")

# ---- Other engineers: append clearly-marked blocks below this line. ----


# ---- runs (owner: runs engineer): the run queue and the background worker ----
def _envseconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {raw!r}") from None


#: a running run whose worker has not heartbeated for this long is recovered by any worker's reaper
PIPEDECK_WORKER_LEASE = _envseconds("PIPEDECK_WORKER_LEASE", 30.0)
#: how often an idle worker looks for queued runs (it is also woken at once when a run is queued)
PIPEDECK_WORKER_POLL = _envseconds("PIPEDECK_WORKER_POLL", 1.0)
PIPEDECK_WORKER_CONCURRENCY = envint("PIPEDECK_WORKER_CONCURRENCY", 4)
#: a run whose worker died is re-queued until it has been started this many times, then failed
PIPEDECK_RUN_MAX_ATTEMPTS = envint("PIPEDECK_RUN_MAX_ATTEMPTS", 2)
# Live run pages can fall behind a burst of events: give each websocket a deeper buffer than the default 100.
CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["capacity"] = 2000
# The in-memory layer, minus its O(clients) scan on every receive (see designer/runs/layers.py).
if CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer":
    CHANNEL_LAYERS["default"]["BACKEND"] = "designer.runs.layers.LocalChannelLayer"
# SQLite serves the web pages and the in-process worker at once: WAL lets readers run during a write and
# makes each commit cheap (no fsync of the whole journal), which is what keeps event batches fast.
# (Not under pytest: the browser tests' live server then stopped seeing rows the test process wrote.)
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and envbool(
    "PIPEDECK_SQLITE_WAL", "pytest" not in sys.modules
):
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
# Tests that start their own PostgreSQL test database (tests/integration) name it so they never collide.
if envstr("PIPEDECK_TEST_DB"):
    DATABASES["default"]["TEST"]["NAME"] = envstr("PIPEDECK_TEST_DB")
# Step log lines are stored as run events (shown on the run page), so they are not echoed to the console.
LOGGING["loggers"]["pipedeck.step"] = {"handlers": [], "level": "WARNING", "propagate": False}
# ---- end runs ----


# ---- run isolation: what a run is given (README, "Security model") ----
def envlist(name: str, default: str = "") -> list[str]:
    """A comma-separated list setting (blank items dropped)."""
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


#: environment variables ``${{ env.X }}`` may read in runs of the web app (none by default)
PIPEDECK_RUN_ENV_ALLOW = envlist("PIPEDECK_RUN_ENV_ALLOW")
#: networks (CIDRs) and host names runs may reach although they are loopback, private or link-local
PIPEDECK_EGRESS_ALLOW = envlist("PIPEDECK_EGRESS_ALLOW")
#: extra plugin modules (dotted paths) registered besides the entry points, in the web app's runs too
PIPEDECK_PLUGIN_MODULES = envlist("PIPEDECK_PLUGIN_MODULES")
#: a run's limits: the default, and the most a team owner may give their team's runs
PIPEDECK_RUN_LIMITS = {
    "cpu_seconds": envint("PIPEDECK_RUN_CPU_SECONDS", 3600),
    "memory_mib": envint("PIPEDECK_RUN_MEMORY_MIB", 4096),
    "open_files": envint("PIPEDECK_RUN_OPEN_FILES", 256),
    "wall_seconds": envint("PIPEDECK_RUN_WALL_SECONDS", 6 * 3600),
}
PIPEDECK_RUN_LIMITS_MAX = {
    "cpu_seconds": envint("PIPEDECK_RUN_CPU_SECONDS_MAX", 6 * 3600),
    "memory_mib": envint("PIPEDECK_RUN_MEMORY_MIB_MAX", 16384),
    "open_files": envint("PIPEDECK_RUN_OPEN_FILES_MAX", 1024),
    "wall_seconds": envint("PIPEDECK_RUN_WALL_SECONDS_MAX", 24 * 3600),
}
#: Polars threads per run
PIPEDECK_RUN_THREADS = envint("PIPEDECK_RUN_THREADS", min(8, os.cpu_count() or 1))
# ---- end run isolation ----
