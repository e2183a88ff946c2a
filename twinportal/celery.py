"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.production")
# Parallelism comes from worker processes (one per core); BLAS threads inside each would fight
# over the same cores and make the twin's batched solves several times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

app = Celery("twinportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
