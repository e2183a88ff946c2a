"""Demo settings: SQLite, tasks run in-process, nothing else to install. Not for real patients."""

from __future__ import annotations

from twinportal.env import env_str
from twinportal.settings.base import *  # noqa: F403
from twinportal.settings.base import BASE_DIR

# A fixed key is acceptable only because the demo holds synthetic data on 127.0.0.1.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "demo-only-insecure-key-synthetic-data-on-localhost")
RESEARCH_EXPORT_SECRET = env_str(
    "TWINPORTAL_RESEARCH_SECRET", "demo-only-research-export-key-synthetic-data"
)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "var" / "demo.sqlite3",
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# E-mail (the privacy officer's notifications) is printed on the server's console.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# Tasks run in the web process: no broker, no worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
# In-process tasks cannot wait: a recalibration runs as soon as new data commits.
TWINPORTAL_TWIN = {**TWINPORTAL_TWIN, "quiet_seconds": 0, "max_wait_seconds": 0}  # noqa: F405

# Serve static files straight from the source folders so the demo needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
