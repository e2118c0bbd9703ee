"""Settings of the model registry service, read from the environment.

With no variable set the *embedded default* applies: SQLite, artifacts in a local folder and
a file-system Celery broker, all under ``REGISTRY_DATA_DIR``. Production sets ``DATABASE_URL``
(PostgreSQL), ``CELERY_BROKER_URL`` (Redis), ``ARTIFACT_STORE_URI`` (``s3://bucket/prefix``)
and ``DJANGO_SECRET_KEY``. Every variable is listed in ``.env.example`` and docs/configuration.md.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Where the embedded default keeps its state (database, artifacts, broker queue, beat schedule).
DATA_DIR = Path(env_str("REGISTRY_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is false: set it to a "
            "long random string (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), or set "
            "DJANGO_SECRET_KEY_FILE to a file that holds it."
        )
    # Development only: a random key kept in the data folder, so sessions survive restarts
    # without a well-known key ever being committed.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "registry",
    "webhooks",
    "ui",
    "config.apps.ServiceConfig",
]

MIDDLEWARE = [
    # First, so the latency it records covers every other middleware (config/metrics.py).
    "config.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that queries: bounds the request's SQL (config/statement_timeout.py).
    "config.statement_timeout.StatementTimeoutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # An unknown address gets the UI's 404 page, with DEBUG too (ui/middleware.py).
    "ui.middleware.NotFoundPageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Last, so it sees the views' exceptions first: a database that is down answers 503.
    "config.middleware.DatabaseUnavailableMiddleware",
]

# The MLflow client posts to paths without a trailing slash; a redirect would lose the body.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The count of requests waiting for the user, in the UI's navigation.
                "ui.context_processors.navigation",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://registry:secret@db:5432/registry. Unset: SQLite in DATA_DIR.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'registry.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server and the worker read while the other writes.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;",
        "transaction_mode": "IMMEDIATE",
    }
# Longest a single SQL statement of a web request may run before PostgreSQL cancels it (0: no
# bound of the service's own). Web requests only: migrations, management commands and Celery
# tasks keep the server's default (config/statement_timeout.py). Not applied on SQLite.
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 30_000, minimum=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Sign-in forms take passwords, never API tokens; failures are throttled (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.RegistryBackend"]

# DJANGO_CACHE_URL, e.g. redis://redis:6379/1: shared by every web process (sign-in throttle).
# Unset: memory of each process, where every process counts apart; `check --deploy` warns
# (accounts/checks.py).
_cache_url = env_str("DJANGO_CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Argon2id for new and upgraded hashes; PBKDF2 stays so existing hashes still verify (each is
# re-hashed with Argon2 at the user's next sign-in).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The web UI's sign-in page (ui/); the admin has its own.
LOGIN_URL = "ui:login"
LOGIN_REDIRECT_URL = "ui:model-list"
LOGOUT_REDIRECT_URL = "ui:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Development serves static files straight from the apps; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security behind a TLS-terminating proxy ----------------------------------------------------
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
# Plain-HTTP requests are redirected to HTTPS in production (behind a TLS proxy, set
# DJANGO_SECURE_PROXY_SSL_HEADER too, or every request loops). /health stays reachable over
# HTTP for load balancers and container health checks (and so does the periodic tasks'
# detail, for monitors). docs/security.md.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/periodic-tasks$"]
# HSTS: browsers then refuse plain HTTP for this host. 0 turns it off. The preload directive
# only allows a submission to the browsers' preload list; it enrols nothing by itself.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of HTML pages (config/middleware.py): the UI and the admin load
# only their own static files; no inline script anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# CORS stays closed: no Access-Control-Allow-* header is ever sent, so browsers on other
# origins cannot read API responses (the MLflow and Databricks clients are not browsers).

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Basic first: its WWW-Authenticate challenge makes an anonymous call a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RegistryBasicAuthentication",
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser with a bound on nesting (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.RegistryJSONParser"],
    "EXCEPTION_HANDLER": "config.exception_handlers.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.openapi.RegistryAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Model Registry API",
    "DESCRIPTION": (
        "The MLflow Model Registry REST protocol (also under /ajax-api/2.0/mlflow/ and "
        "/api/2.0/preview/mlflow/), plus the registry's own extensions under /api/2.0/registry/. "
        'Errors are JSON objects {"error_code", "message"}.'
    ),
    "VERSION": "2.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["config.schema.exclude_alias_prefixes"],
    # Its schema-quality warnings are not deployment problems; `manage.py spectacular
    # --validate` reports them. Off, so `check --deploy --fail-level WARNING` gates security.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# --- Celery -----------------------------------------------------------------------------------
# CELERY_BROKER_URL, e.g. redis://redis:6379/0. Unset: a file-system queue in DATA_DIR.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "queue"),
        "data_folder_out": str(_queue / "queue"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
    # Every process that queues a task (web, worker, beat, a shell) needs the folders.
    for _folder in ("queue", "processed", "control"):
        (_queue / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60, minimum=1)
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep each worker thread's database connection between tasks (Celery's Django fix-up otherwise
# closes it around every task: a new PostgreSQL backend per webhook delivery). config/celery.py
# drops a broken or CONN_MAX_AGE-expired one before each task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
# Beat's schedule file (`celery beat --schedule` overrides it). Its folder is created when beat
# starts (config/celery.py), so the default works without the embedded default's data folder.
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(DATA_DIR / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULER = "config.celery:PersistentScheduler"
CELERY_TIMEZONE = TIME_ZONE


# --- Artifact store ---------------------------------------------------------------------------
def _artifact_store_uri() -> str:
    uri = env_str("ARTIFACT_STORE_URI", (DATA_DIR / "artifacts").as_uri())
    parsed = urlparse(uri)
    if parsed.scheme == "s3" and parsed.netloc:
        return uri
    if parsed.scheme == "file" and parsed.path:
        return uri
    raise ImproperlyConfigured(
        f"ARTIFACT_STORE_URI={uri!r} is not supported: use s3://<bucket>[/<prefix>] or "
        "file:///absolute/folder."
    )


# s3://bucket/prefix (endpoint, region and credentials from the standard AWS variables, e.g.
# AWS_ENDPOINT_URL_S3, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID) or file:///folder.
ARTIFACT_STORE_URI = _artifact_store_uri()


def _file_source_roots() -> list[str]:
    """Folders under which ``file://`` sources may be registered; none unless configured,
    except in the embedded mode (DEBUG on SQLite), where it is ``<data dir>/sources``."""
    embedded = DEBUG and not env_str("DATABASE_URL")
    default = [str(DATA_DIR / "sources")] if embedded else []
    roots = env_list("ARTIFACT_FILE_SOURCE_ROOTS", default)
    for root in roots:
        if not Path(root).is_absolute():
            raise ImproperlyConfigured(
                f"ARTIFACT_FILE_SOURCE_ROOTS: {root!r} is not an absolute path."
            )
    # Resolved once, so a symlinked root is compared by where it really is.
    return [str(Path(root).resolve()) for root in roots]


def _artifact_mode() -> str:
    mode = env_str("ARTIFACT_MODE", "copy").strip().lower()
    if mode not in ("copy", "reference"):
        raise ImproperlyConfigured(
            f"ARTIFACT_MODE={mode!r} is not supported: use copy (the registry keeps a verified "
            "copy of every version) or reference (versions point at their sources)."
        )
    return mode


def _s3_addressing_style() -> str:
    style = env_str("ARTIFACT_S3_ADDRESSING_STYLE", "path").strip().lower()
    if style not in ("path", "virtual", "auto"):
        raise ImproperlyConfigured(
            f"ARTIFACT_S3_ADDRESSING_STYLE={style!r} is not one of path, virtual, auto."
        )
    return style


# Managed artifacts (docs/architecture.md "Artifacts"). Sizes in bytes, times in seconds. Read
# through registry.artifacts.conf.artifact_settings(), which declares the types but holds no
# defaults: every default is here.
ARTIFACTS: dict[str, Any] = {
    # copy: every version's files are copied into the store (digest, immutable); reference:
    # versions keep their source as a pointer and their download URI, as mlflow server does.
    "MODE": _artifact_mode(),
    "FILE_SOURCE_ROOTS": _file_source_roots(),
    # runs:/, models:/<logged model id> and mlflow-artifacts:/<path> sources: the MLflow tracking
    # server that knows the runs, logged models and their files.
    "MLFLOW_TRACKING_SERVER_URL": env_str("MLFLOW_TRACKING_SERVER_URL", ""),
    "MLFLOW_TRACKING_SERVER_TOKEN": env_str("MLFLOW_TRACKING_SERVER_TOKEN", ""),
    # model-versions/create waits this long for the copy, so that a quick copy answers READY
    # (the mlflow client otherwise sleeps 3 s before it looks again). 0: answer at once.
    "REGISTRATION_WAIT": env_float("ARTIFACT_REGISTRATION_WAIT_SECONDS", 2.0, minimum=0.0),
    # Transient storage errors retry with base * 2**n seconds (capped) up to MAX_RETRIES times.
    "COPY_MAX_RETRIES": env_int("ARTIFACT_COPY_MAX_RETRIES", 8, minimum=0),
    "COPY_RETRY_BACKOFF": env_float("ARTIFACT_COPY_RETRY_BACKOFF", 5.0, minimum=0.0),
    "COPY_RETRY_BACKOFF_MAX": env_float("ARTIFACT_COPY_RETRY_BACKOFF_MAX", 600.0, minimum=0.0),
    # Files copied at once, and parts in flight (and in memory) per multipart transfer.
    "COPY_CONCURRENCY": env_int("ARTIFACT_COPY_CONCURRENCY", 8, minimum=1),
    "MULTIPART_CHUNK_SIZE": env_int("ARTIFACT_MULTIPART_CHUNK_MIB", 16, minimum=5) * 1024 * 1024,
    "MULTIPART_CONCURRENCY": env_int("ARTIFACT_MULTIPART_CONCURRENCY", 4, minimum=1),
    # S3 → S3 on the same endpoint: let the store copy (the worker still reads once to hash).
    # Off: stream every byte through the worker (faster where copies are slow, e.g. moto).
    "SERVER_SIDE_COPY": env_bool("ARTIFACT_SERVER_SIDE_COPY", True),
    # "path" works with every S3-compatible server; "virtual" or "auto" for AWS-only setups.
    "S3_ADDRESSING_STYLE": _s3_addressing_style(),
    # Versions still PENDING_REGISTRATION this long after their last attempt are re-queued
    # by the periodic sweep (a lost broker message must not leave a version pending forever).
    "SWEEP_INTERVAL": env_float("ARTIFACT_COPY_SWEEP_INTERVAL", 300.0, minimum=1.0),
    # Uploaded files (uploads/<username>/...) are deleted by an hourly beat task this long after
    # they were last written, unless a version still pending registration reads them. 0: never.
    "UPLOAD_TTL": env_int("ARTIFACT_UPLOAD_TTL_SECONDS", 7 * 24 * 3600, minimum=0),
}


# --- Registry ---------------------------------------------------------------------------------
def _tracking_ui_url() -> str:
    url = env_str("REGISTRY_TRACKING_UI_URL", "").rstrip("/")
    parsed = urlparse(url)
    if url and (parsed.scheme not in ("http", "https") or not parsed.netloc):
        raise ImproperlyConfigured(
            f"REGISTRY_TRACKING_UI_URL={url!r} is not an http(s) address, e.g. "
            "https://mlflow.example.com."
        )
    return url


def _default_permission_level() -> str:
    value = env_str("REGISTRY_DEFAULT_PERMISSION_LEVEL", "CAN_READ")
    allowed = [
        "NONE",
        "CAN_READ",
        "CAN_EDIT",
        "CAN_MANAGE_STAGING_VERSIONS",
        "CAN_MANAGE_PRODUCTION_VERSIONS",
        "CAN_MANAGE",
    ]
    if value not in allowed:
        raise ImproperlyConfigured(
            f"REGISTRY_DEFAULT_PERMISSION_LEVEL={value!r} is not one of {', '.join(allowed)}."
        )
    return value


# Read through registry.conf.registry_settings() (the search limits) and
# accounts.conf.account_settings() (the rest), which declare the types but hold no defaults.
REGISTRY: dict[str, Any] = {
    # Largest page a search may ask for (the MLflow protocol's limits).
    "MAX_RESULTS_REGISTERED_MODELS": 1000,
    "MAX_RESULTS_MODEL_VERSIONS": 200_000,
    # The level every signed-in user holds on every model; NONE makes models private to grants.
    "DEFAULT_PERMISSION_LEVEL": _default_permission_level(),
    # Groups whose members may create registered models; empty: every signed-in user may.
    "MODEL_CREATOR_GROUPS": env_list("REGISTRY_MODEL_CREATOR_GROUPS", []),
    # Failed sign-ins from one client address for one user name before that address must wait
    # for that name, and how long (the failures are counted over the same window).
    "LOGIN_FAILURE_LIMIT": env_int("REGISTRY_LOGIN_FAILURE_LIMIT", 10, minimum=1),
    "LOGIN_LOCKOUT_SECONDS": env_int("REGISTRY_LOGIN_LOCKOUT_SECONDS", 300, minimum=1),
    # Failed sign-ins from one client address across all user names (password spraying)
    # before that address must wait for every name (accounts/throttle.py, docs/architecture.md).
    "LOGIN_ADDRESS_FAILURE_LIMIT": env_int("REGISTRY_LOGIN_ADDRESS_FAILURE_LIMIT", 100, minimum=1),
    # Take the client address from X-Forwarded-For (only behind a proxy that sets it): the
    # entry appended by the outermost of TRUSTED_PROXY_COUNT proxies, counted from the right.
    "TRUST_X_FORWARDED_FOR": env_bool("REGISTRY_TRUST_X_FORWARDED_FOR", False),
    "TRUSTED_PROXY_COUNT": env_int("REGISTRY_TRUSTED_PROXY_COUNT", 1, minimum=1),
    # API tokens one user may be given through the API or the UI within the window.
    "TOKEN_CREATE_LIMIT": env_int("REGISTRY_TOKEN_CREATE_LIMIT", 20, minimum=1),
    "TOKEN_CREATE_WINDOW_SECONDS": env_int("REGISTRY_TOKEN_CREATE_WINDOW_SECONDS", 3600, minimum=1),
    # The address of the MLflow tracking server's web UI (e.g. https://mlflow.example.com): the
    # version page links a version's run there. Empty: the run id is shown without a link.
    "TRACKING_UI_URL": _tracking_ui_url(),
}

# --- Provenance -------------------------------------------------------------------------------
# Signed models, signed promotion records and the trail's hash chains (docs/security.md,
# docs/decisions/0016-provenance.md, 0017-tamper-evident-trail.md). Read through
# registry.provenance.conf.provenance_settings(), which declares the types; every default is here.
PROVENANCE: dict[str, Any] = {
    # The registry's private key, PEM (ECDSA on P-256, P-384 or P-521, unencrypted), or with
    # REGISTRY_SIGNING_KEY_FILE the path of a file holding it. Empty: nothing is signed, and
    # `check --deploy` says so.
    "SIGNING_KEY": env_str("REGISTRY_SIGNING_KEY", ""),
    # Public keys (concatenated PEM blocks) of earlier signing keys, served beside the current
    # one so that what they signed still verifies after a rotation.
    "RETIRED_PUBLIC_KEYS": env_str("REGISTRY_SIGNING_RETIRED_PUBLIC_KEYS", ""),
    # The registry's name in every statement it signs (e.g. its public URL).
    "IDENTITY": env_str("REGISTRY_IDENTITY", "model-registry"),
}

# --- Encryption at rest -----------------------------------------------------------------------
# Comma-separated Fernet keys for the webhook secrets (webhooks/crypto.py): the first encrypts,
# all decrypt; rotate with `manage.py rotate_encryption_keys`. Unset: a key derived from
# SECRET_KEY (fine for the embedded mode; `check --deploy` warns in production).
REGISTRY_ENCRYPTION_KEYS = env_list("REGISTRY_ENCRYPTION_KEYS", [])

# --- Webhooks ---------------------------------------------------------------------------------
# Delivery of registry events to HTTP receivers (webhooks/; docs/webhooks.md). Read through
# webhooks.conf.webhook_settings(), which parses and checks these keys but holds no defaults:
# every default is here.
WEBHOOKS = {
    # Off: no event is recorded and nothing is sent (the APIs still manage hooks).
    "ENABLED": env_bool("WEBHOOKS_ENABLED", True),
    # CIDR networks a hook may reach although they are internal (loopback, private, link-local,
    # ...), e.g. 10.20.0.0/16. Empty: only public addresses. Checked at connect time.
    "ALLOWED_NETWORKS": env_list("WEBHOOKS_ALLOWED_NETWORKS", []),
    # URL schemes a hook may use.
    "ALLOWED_SCHEMES": env_list("WEBHOOKS_ALLOWED_SCHEMES", ["https"]),
    "CONNECT_TIMEOUT": env_float("WEBHOOKS_CONNECT_TIMEOUT", 5.0, minimum=0.1),
    "READ_TIMEOUT": env_float("WEBHOOKS_READ_TIMEOUT", 10.0, minimum=0.1),
    # Tries per delivery, then FAILED; retries wait BACKOFF_BASE * 2**(n-1) s (capped, jittered).
    "MAX_ATTEMPTS": env_int("WEBHOOKS_MAX_ATTEMPTS", 8, minimum=1),
    "BACKOFF_BASE": env_float("WEBHOOKS_BACKOFF_BASE", 10.0, minimum=0.0),
    "BACKOFF_MAX": env_float("WEBHOOKS_BACKOFF_MAX", 3600.0, minimum=0.0),
    # Failed deliveries in a row after which a hook is DISABLED (0: never).
    "DISABLE_AFTER_FAILURES": env_int("WEBHOOKS_DISABLE_AFTER_FAILURES", 10, minimum=0),
    # The beat sweep: how often it runs, how late a due delivery must be before it is re-queued,
    # and how long a claim (a try in flight) lasts before a dead worker's delivery is re-queued.
    "SWEEP_INTERVAL": env_float("WEBHOOKS_SWEEP_INTERVAL", 30.0, minimum=1.0),
    "SWEEP_GRACE": env_float("WEBHOOKS_SWEEP_GRACE", 15.0, minimum=0.0),
    "CLAIM_LEASE": env_float("WEBHOOKS_CLAIM_LEASE", 120.0, minimum=1.0),
    # The largest body a delivery may send, in bytes. A payload template can repeat large event
    # fields; a delivery whose body would be larger fails (with the reason) instead of being sent.
    "MAX_BODY_BYTES": env_int("WEBHOOKS_MAX_BODY_BYTES", 1_048_576, minimum=1024),
}
# --- Email notifications -----------------------------------------------------------------------
#
# Django's mail settings. Without EMAIL_HOST no email is sent (docs/ui.md, "Notifications").
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Seconds to wait for the mail server before giving up on one email (it is logged, not retried).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "model-registry@localhost")
NOTIFICATIONS = {
    # Emails to those who may decide a request when it is made, and to the requester when it
    # is decided. On only when a mail server is set.
    "ENABLED": bool(EMAIL_HOST) and env_bool("NOTIFICATIONS_ENABLED", True),
    # The registry's address as its users reach it, for the links in the emails, e.g.
    # https://registry.example.com. Empty: the emails carry the paths alone.
    "BASE_URL": env_str("REGISTRY_PUBLIC_URL", "").rstrip("/"),
}

# Other apps may have put their own periodic tasks in the schedule already; add to it.
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.webhook_deliveries_sweep_task",
    "schedule": WEBHOOKS["SWEEP_INTERVAL"],
}
CELERY_BEAT_SCHEDULE["transition-requests-expire"] = {
    # Requests past their stage policy's request_ttl are closed within this many seconds.
    "task": "registry.tasks.transition_requests_expire_task",
    "schedule": float(env_int("REGISTRY_REQUEST_EXPIRY_INTERVAL", 60, minimum=1)),
}
CELERY_BEAT_SCHEDULE["artifacts-pending-sweep"] = {
    "task": "registry.tasks.model_versions_pending_sweep_task",
    "schedule": ARTIFACTS["SWEEP_INTERVAL"],
}
CELERY_BEAT_SCHEDULE["artifact-uploads-expire"] = {
    # Uploads older than ARTIFACT_UPLOAD_TTL_SECONDS go within this many seconds after.
    "task": "registry.tasks.artifact_uploads_expire_task",
    "schedule": float(env_int("ARTIFACT_UPLOAD_EXPIRY_INTERVAL", 3600, minimum=1)),
}
CELERY_BEAT_SCHEDULE["trail-head-export"] = {
    # The heads of the trail's and the audit entries' hash chains, logged and exported as a
    # metric this often (docs/decisions/0017-tamper-evident-trail.md).
    "task": "registry.tasks.trail_head_export_task",
    "schedule": float(env_int("REGISTRY_TRAIL_HEAD_INTERVAL", 300, minimum=1)),
}

# --- Metrics ----------------------------------------------------------------------------------
# Prometheus text format at /metrics (config/metrics.py; docs/operations.md). Off: /metrics is a
# 404. With a token, scrapes send `Authorization: Bearer <token>`. Several processes (gunicorn
# workers, Celery) are summed only with PROMETHEUS_MULTIPROC_DIR set (read by prometheus_client).
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}
