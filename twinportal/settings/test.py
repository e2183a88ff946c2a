"""Test settings: the real PostgreSQL and Redis (``make test`` starts them when they are stopped)."""

from __future__ import annotations

import dj_database_url

from twinportal.env import env_str
from twinportal.settings.base import *  # noqa: F403
from twinportal.settings.base import celery_queues

SECRET_KEY = "test-only-key-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        conn_max_age=0,
    )
}

# Tests empty the tables between transactional tests with TRUNCATE, which the audit table's
# trigger refuses unless the connection says so (audit/migrations/0002; never set in production).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c twinportal.audit_truncate=allow"

REDIS_URL = env_str("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # A database of its own: cache.clear() flushes its whole database, which must never take
        # the Celery messages of a test running beside it.
        "LOCATION": env_str("TEST_CACHE_URL", "redis://127.0.0.1:6379/14"),
        # Each pytest-xdist worker keeps its own keys in the shared Redis.
        "KEY_PREFIX": env_str("PYTEST_XDIST_WORKER", "test"),
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# Each pytest-xdist worker runs its own Celery worker on its own queues.
CELERY_QUEUE_PREFIX = (
    env_str("TWINPORTAL_QUEUE_PREFIX", "twinportal") + "-" + env_str("PYTEST_XDIST_WORKER", "main")
)
CELERY_TASK_DEFAULT_QUEUE = str(celery_queues(CELERY_QUEUE_PREFIX)["CELERY_TASK_DEFAULT_QUEUE"])
CELERY_TASK_ROUTES = celery_queues(CELERY_QUEUE_PREFIX)["CELERY_TASK_ROUTES"]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher"
]  # speed; real hashers in production
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
