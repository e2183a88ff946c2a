"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.production")

app = Celery("twinportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
