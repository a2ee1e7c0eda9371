"""Pipedeck settings, all read from the environment (the README's "Settings" table lists every one).

Defaults give the embedded development setup of ``make run``: SQLite, the in-memory channel layer, a worker
inside the web process and generated development keys. Production sets the keys, hosts, HTTPS, database and
Redis through the environment (README, "Production"). Tests use ``tests.settings``, built on this module.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

# Classes that django-stubs makes generic (``admin.ModelAdmin[Team]``) can be subscripted at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


# ---- reading the environment -------------------------------------------------------------------------------


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


def envseconds(name: str, default: float) -> float:
    """A duration in seconds (a number)."""
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {raw!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    """A comma-separated list setting (blank items dropped)."""
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def dev_key(name: str, file: Path, make: Any) -> str:
    """The value of a key setting that is not set: generated once into ``file`` for development, with a
    warning (production sets the variable)."""
    if not file.exists():
        file.write_text(make())
    print(f"WARNING: {name} is not set: using a generated development key ({file.name}).", file=sys.stderr)
    return file.read_text().strip()


# ---- Django ------------------------------------------------------------------------------------------------

DEBUG = envbool("DJANGO_DEBUG", False)


def _random_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


SECRET_KEY = envstr("DJANGO_SECRET_KEY") or dev_key(
    "DJANGO_SECRET_KEY", BASE_DIR / ".dev-secret-key", _random_secret_key
)
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

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
    # static files from the process itself (compressed; hashed names in production), before anything else
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
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
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "designer.context_processors.navigation",
                "designer.context_processors.limits",
            ],
        },
    },
]

#: Content-Security-Policy of every response (enforced): scripts and styles from this site's static files, or
#: an element carrying the request's nonce (``csp_nonce`` in templates); no inline code, no eval. 'self' in
#: connect-src covers the site's own ws:/wss: websockets (CSP level 3). Cytoscape's stylesheet ships as a
#: file (static/editor/graph.css) and htmx injects none (``htmx-config`` in templates/layout.html).
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
#: the largest form post (bigger ones get a 400 page); project files are uploads, limited on their own
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "designer-home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
#: production: files collected by ``manage.py collectstatic``, compressed, with content-hashed names (cached
#: for ever by browsers); development (``make run``) serves them from ``static/`` as they are
PIPEDECK_STATIC_COLLECTED = envbool("PIPEDECK_STATIC_COLLECTED", False)
# (only where collected: WhiteNoise would serve, and warn about, a folder that development never fills)
STATIC_ROOT = (
    Path(envstr("PIPEDECK_STATIC_ROOT", str(BASE_DIR / "staticfiles"))) if PIPEDECK_STATIC_COLLECTED else None
)
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PIPEDECK_STATIC_COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PIPEDECK_STATIC_COLLECTED
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: "text" (development) or "json" (one JSON object per line, for a log collector)
PIPEDECK_LOG_FORMAT = envstr("PIPEDECK_LOG_FORMAT", "text")
if PIPEDECK_LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"PIPEDECK_LOG_FORMAT must be text or json, got {PIPEDECK_LOG_FORMAT!r}")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "designer.logs.JsonLinesFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": PIPEDECK_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": envstr("PIPEDECK_LOG_LEVEL", "WARNING")},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # Step log lines are stored as run events (shown on the run page): not echoed to the console.
        "pipedeck.step": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}

warnings.filterwarnings("ignore", message=".*StreamingHttpResponse.*", module="django")


# ---- the database and the channel layer --------------------------------------------------------------------


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
        "TEST": {"NAME": envstr("PIPEDECK_TEST_DB", "test_pipedeck")},
    }


def _sqlite() -> dict[str, Any]:
    # WAL: readers never wait for the writer (web pages and the in-process worker at once) and each commit
    # is cheap (no fsync of the whole journal), which keeps the worker's event batches fast.
    wal = envbool("PIPEDECK_SQLITE_WAL", True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / envstr("PIPEDECK_SQLITE", "db.sqlite3"),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" if wal else "",
        },
    }


DATABASE_URL = envstr("DATABASE_URL")
DATABASES: dict[str, dict[str, Any]] = {
    "default": _database_from_url(DATABASE_URL) if DATABASE_URL else _sqlite()
}

REDIS_URL = envstr("REDIS_URL")
#: Live run pages can fall behind a burst of events: each websocket gets a deeper buffer than Channels' 100.
_LAYER_CAPACITY = 2000
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": _LAYER_CAPACITY},
        }
        if REDIS_URL
        # Channels' in-memory layer, minus its scan of every channel on each receive (designer/runs/layers.py)
        else {"BACKEND": "designer.runs.layers.LocalChannelLayer", "CONFIG": {"capacity": _LAYER_CAPACITY}}
    )
}


# ---- runs: the queue, the workers, what a run is given (README, "Security model") ------------------------

#: run the worker inside the web process (the embedded default); false on web processes of a scale-out site
PIPEDECK_INPROCESS_WORKER = envbool("PIPEDECK_INPROCESS_WORKER", True)
#: a running run whose worker has not heartbeated for this long is recovered by any worker's reaper
PIPEDECK_WORKER_LEASE = envseconds("PIPEDECK_WORKER_LEASE", 30.0)
#: how often an idle worker looks for queued runs (it is also woken at once when a run is queued)
PIPEDECK_WORKER_POLL = envseconds("PIPEDECK_WORKER_POLL", 1.0)
PIPEDECK_WORKER_CONCURRENCY = envint("PIPEDECK_WORKER_CONCURRENCY", 4)
#: a run whose worker died is re-queued until it has been started this many times, then failed
PIPEDECK_RUN_MAX_ATTEMPTS = envint("PIPEDECK_RUN_MAX_ATTEMPTS", 2)

#: the teams' files: each team's runs see PIPEDECK_DATA_ROOT/<team slug>/ only
PIPEDECK_DATA_ROOT = Path(envstr("PIPEDECK_DATA_ROOT", str(BASE_DIR / "data")))
#: environment variables ``${{ env.X }}`` may read in runs of the web app (none by default)
PIPEDECK_RUN_ENV_ALLOW = envlist("PIPEDECK_RUN_ENV_ALLOW")
#: networks (CIDRs), addresses and host names runs may reach although they are loopback, private or link-local
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


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


#: Fernet keys of the team secrets, comma-separated: the first encrypts, all decrypt (rotation)
PIPEDECK_SECRET_KEYS = envlist("PIPEDECK_SECRET_KEYS") or [
    dev_key("PIPEDECK_SECRET_KEYS", BASE_DIR / ".dev-fernet-key", _fernet_key)
]


# ---- HTTPS, cookies, e-mail (README, "Production") -------------------------------------------------------

#: the site is served over HTTPS: secure cookies, HSTS, redirect plain HTTP
PIPEDECK_HTTPS = envbool("PIPEDECK_HTTPS", False)
if envbool("PIPEDECK_BEHIND_PROXY", False):
    # nginx (or another proxy) terminates TLS and says so in this header; trust it only behind one
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("PIPEDECK_SSL_REDIRECT", PIPEDECK_HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PIPEDECK_HTTPS
#: a safe start (one hour); raise it (e.g. 31536000) once HTTPS works everywhere on the domain
SECURE_HSTS_SECONDS = envint("PIPEDECK_HSTS_SECONDS", 3600 if PIPEDECK_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("PIPEDECK_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("PIPEDECK_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

#: e-mail (Django 6.1's MAILERS): SMTP when PIPEDECK_EMAIL_HOST is set, else written to the console log
_EMAIL_HOST = envstr("PIPEDECK_EMAIL_HOST")
MAILERS: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _EMAIL_HOST,
                "port": envint("PIPEDECK_EMAIL_PORT", 587),
                "username": envstr("PIPEDECK_EMAIL_USER"),
                "password": envstr("PIPEDECK_EMAIL_PASSWORD"),
                "use_tls": envbool("PIPEDECK_EMAIL_TLS", True),
                "timeout": 10,
            },
        }
        if _EMAIL_HOST
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = SERVER_EMAIL = envstr("PIPEDECK_EMAIL_FROM", "pipedeck@localhost")
#: anyone may create an account (``/accounts/signup/``); off: people join through an owner's invitation
PIPEDECK_OPEN_SIGNUP = envbool("PIPEDECK_OPEN_SIGNUP", False)


# ---- step outputs: previews, kept outputs, resume (README, "Seeing the data") ---------------------------

#: rows a preview's extract steps read (the limit is pushed down to the source where it can be)
PIPEDECK_PREVIEW_ROWS = envint("PIPEDECK_PREVIEW_ROWS", 1000)
#: the rows of each step's sample, and the most its sample may take as JSON (bytes); longer values are cut
PIPEDECK_OUTPUT_SAMPLE_ROWS = envint("PIPEDECK_OUTPUT_SAMPLE_ROWS", 100)
PIPEDECK_OUTPUT_SAMPLE_BYTES = envint("PIPEDECK_OUTPUT_SAMPLE_BYTES", 64 * 1024)
#: days a run's kept outputs (Parquet, for resume) and a preview stay; the most a team's kept outputs take
PIPEDECK_OUTPUTS_RETENTION_DAYS = envint("PIPEDECK_OUTPUTS_RETENTION_DAYS", 7)
PIPEDECK_OUTPUTS_TEAM_MAX_MB = envint("PIPEDECK_OUTPUTS_TEAM_MAX_MB", 2048)
#: how often a worker applies the retention rule when idle (seconds)
PIPEDECK_OUTPUTS_CLEAN_EVERY = envseconds("PIPEDECK_OUTPUTS_CLEAN_EVERY", 600.0)


# ---- triggers and alerts (README, "Triggers and alerts") -------------------------------------------------

#: how often each worker looks for due schedules, backfill dates and alerts (seconds)
PIPEDECK_TRIGGERS_TICK = envseconds("PIPEDECK_TRIGGERS_TICK", 1.0)
#: how late a fire time may be fired and still count as on time (later: the schedule's catch-up policy)
PIPEDECK_SCHEDULE_GRACE = envseconds("PIPEDECK_SCHEDULE_GRACE", 120.0)
#: calls a minute a new webhook accepts (each webhook's own limit can be changed)
PIPEDECK_WEBHOOK_RATE_LIMIT = envint("PIPEDECK_WEBHOOK_RATE_LIMIT", 30)
#: the largest webhook body accepted (bytes)
PIPEDECK_WEBHOOK_MAX_BYTES = envint("PIPEDECK_WEBHOOK_MAX_BYTES", 64 * 1024)
#: the most days one backfill covers
PIPEDECK_BACKFILL_MAX_DATES = envint("PIPEDECK_BACKFILL_MAX_DATES", 366)
#: attempts of one alert before it is given up, the wait after the first failure (doubling), a timeout
PIPEDECK_ALERT_ATTEMPTS = envint("PIPEDECK_ALERT_ATTEMPTS", 5)
PIPEDECK_ALERT_BACKOFF = envseconds("PIPEDECK_ALERT_BACKOFF", 30.0)
PIPEDECK_ALERT_TIMEOUT = envseconds("PIPEDECK_ALERT_TIMEOUT", 10.0)
#: the site's address, for the links in alerts and webhook answers made outside a request
PIPEDECK_SITE_URL = envstr("PIPEDECK_SITE_URL", "http://127.0.0.1:8000")
