"""Settings shared by every environment. Nothing here reads a secret; the environments do."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import django_stubs_ext
from celery.schedules import crontab

from twinportal.env import env_int, env_str

# Lets admin and DRF classes be written as generics (``UserAdmin[User]``) for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = False

INSTALLED_APPS = [
    # the admin site asks for a second factor (signin/admin_site.py)
    "signin.admin_app.TwinPortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "pgtrigger",
    "pghistory",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "accounts",
    "patients",
    "twins",
    "devices",
    "audit",
    "research",
    "signin",
]

MIDDLEWARE = [
    "twinportal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.sessions.SessionCapMiddleware",
    "twinportal.middleware.HistoryContextMiddleware",
    "audit.middleware.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "twinportal.middleware.SecurityHeadersMiddleware",
    # last: turns a sign-in refused by the lockout into its 429 page
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "twinportal.urls"
WSGI_APPLICATION = "twinportal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# Passwords: length and a common-password check, no composition rules (NIST SP 800-63B, SECURITY.md 19).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "patients:list"
LOGOUT_REDIRECT_URL = "login"

# Signing in (SECURITY.md 3, 17, 18; signin/). Staff (data managers, administrators) give the code
# of an authenticator app (TOTP, django-otp) after their password; the admin site asks for it.
# django-axes refuses a user name from an address after 5 failures, passwords and codes alike,
# with a 429 page, for TWINPORTAL_LOCKOUT_MINUTES after the latest attempt.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("TWINPORTAL_LOCKOUT_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# the client's address is REMOTE_ADDR, as in the audit log: behind a proxy, have it set that
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# masked in the attempts axes stores (passwords always are)
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]
# no start-up banner; the sign-in log is signin.events' JSON lines
AXES_VERBOSE = False
OTP_TOTP_ISSUER = "TwinPortal"

# Idle timeout: the session expires after this many seconds without a request (SECURITY.md 7).
SESSION_COOKIE_AGE = env_int("TWINPORTAL_SESSION_IDLE_SECONDS", 15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
# Absolute cap: a session ends this long after sign-in, however active (accounts/sessions.py).
TWINPORTAL_SESSION_MAX_SECONDS = env_int("TWINPORTAL_SESSION_MAX_SECONDS", 12 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Uploads: a FHIR bundle may be large, but not unbounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TWINPORTAL_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# file uploads stream to disk past FILE_UPLOAD_MAX_MEMORY_SIZE, so the admin's bundle upload
# checks this limit itself
TWINPORTAL_MAX_BUNDLE_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

REST_FRAMEWORK = {
    # API tokens first: a request without credentials gets 401 with "WWW-Authenticate: Bearer"
    # (session authentication has no challenge, so DRF would answer 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.ApiTokenScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TwinPortal API",
    "DESCRIPTION": (
        "Patient records, FHIR R4 interchange and digital-twin results for devices, integrations and "
        "TwinPortal's own pages. Every patient-scoped endpoint is limited to the caller's care teams."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: JSON only, ids in task arguments, time limits on every task (STYLE.md 8-9).
CELERY_BROKER_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TIMEZONE = "UTC"
# A publish that cannot reach Redis fails at once instead of blocking the request: the work is
# already a row in PostgreSQL and the sweeper queues it when Redis is back.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
    # An unacknowledged message (its worker was killed) is delivered again after this long.
    "visibility_timeout": env_int("TWINPORTAL_VISIBILITY_TIMEOUT_SECONDS", 3600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Three queues: the default (recalibrations after new data, note reading), "batch" (nightly
# chunks) and "interactive" (what-if comparisons, which a clinician is waiting for). Give the
# interactive queue a worker of its own so the nightly run never delays it (README, scale-out).
CELERY_QUEUE_PREFIX = env_str("TWINPORTAL_QUEUE_PREFIX", "twinportal")


def celery_queues(prefix: str) -> dict[str, object]:
    """Default queue and task routes for a queue-name prefix."""
    return {
        "CELERY_TASK_DEFAULT_QUEUE": prefix,
        "CELERY_TASK_ROUTES": {
            "twins.tasks.twin_recompute_chunk": {"queue": f"{prefix}-batch"},
            "twins.tasks.twin_nightly_dispatch": {"queue": f"{prefix}-batch"},
            "twins.tasks.twin_whatif": {"queue": f"{prefix}-interactive"},
        },
    }


CELERY_TASK_DEFAULT_QUEUE = str(celery_queues(CELERY_QUEUE_PREFIX)["CELERY_TASK_DEFAULT_QUEUE"])
CELERY_TASK_ROUTES = celery_queues(CELERY_QUEUE_PREFIX)["CELERY_TASK_ROUTES"]

# The twin kept current (twins/services.py reads these through ``twin_config``).
TWINPORTAL_TWIN = {
    # a recalibration waits this long after the latest new reading (a burst causes one fit) ...
    "quiet_seconds": env_int("TWINPORTAL_RECALIBRATION_QUIET_SECONDS", 30),
    # ... but never longer than this after the first
    "max_wait_seconds": env_int("TWINPORTAL_RECALIBRATION_MAX_WAIT_SECONDS", 300),
    # the nightly run refits patients whose fit is older than this even without new data
    "stale_after_days": env_int("TWINPORTAL_TWIN_STALE_DAYS", 7),
    # patients per nightly chunk: calibrated as one vectorised batch, written in one transaction
    "chunk_size": env_int("TWINPORTAL_TWIN_CHUNK_SIZE", 500),
    # a queued chunk or recalibration without a result after this long is queued again
    "lease_seconds": env_int("TWINPORTAL_TWIN_LEASE_SECONDS", 1200),
    "whatif_lease_seconds": env_int("TWINPORTAL_WHATIF_LEASE_SECONDS", 120),
    # a recalibration that failed this many times waits for the nightly run instead
    "max_attempts": env_int("TWINPORTAL_TWIN_MAX_ATTEMPTS", 5),
}
# API tokens of people and integrations (accounts/services.py): a token lasts this many days
# unless the data manager issuing it chooses a shorter or longer life, never longer than the most.
TWINPORTAL_API_TOKENS = {
    "default_days": env_int("TWINPORTAL_API_TOKEN_DAYS", 90),
    "max_days": env_int("TWINPORTAL_API_TOKEN_MAX_DAYS", 365),
}
# Audit and emergency access (audit/services.py reads these through ``audit_config``).
TWINPORTAL_AUDIT = {
    # emergency ("break-the-glass") access lasts this long, then the patient is a 404 again
    "break_glass_minutes": env_int("TWINPORTAL_BREAK_GLASS_MINUTES", 60),
    # every emergency access is e-mailed here (through Django's e-mail backend) and recorded
    "privacy_officer_email": env_str(
        "TWINPORTAL_PRIVACY_OFFICER_EMAIL", "privacy-officer@localhost"
    ),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic job, in one place. Each has a named schedule and expires rather than piling up
# when workers are down.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # 02:30 UTC: rebuild note summaries that are stale (new notes, new pipeline, new day).
    "note-summaries-nightly": {
        "task": "patients.tasks.note_summaries_nightly",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 6 * 3600},
    },
    # 01:00 UTC: refit every patient whose record changed or whose fit is stale, in chunks.
    "twin-nightly": {
        "task": "twins.tasks.twin_nightly_dispatch",
        "schedule": crontab(hour=1, minute=0),
        "options": {"expires": 6 * 3600},
    },
    # Every minute: queue recalibrations, chunks and what-ifs whose message is missing (Redis
    # was down when they were written) or was lost (Redis restarted, a worker killed).
    "twin-sweep": {
        "task": "twins.tasks.twin_sweep",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "twinportal.logging.JsonFormatter"}},
    "filters": {"request_id": {"()": "twinportal.logging.RequestIdFilter"}},
    "handlers": {
        "console": {
            # JSON lines for servers and pipes, readable lines on a terminal
            "class": "twinportal.logging.ConsoleHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("TWINPORTAL_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # failures and lockouts are warnings; its info lines are housekeeping
        "axes": {"level": "WARNING"},
    },
}
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }
)
