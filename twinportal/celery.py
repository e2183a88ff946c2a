"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.production")
# Parallelism comes from worker processes (one per core); BLAS threads inside each would fight
# over the same cores and make the twin's batched solves several times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

logger = logging.getLogger(__name__)

app = Celery("twinportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def queue_task(
    task: Any, *, args: list[object], countdown: float | None = None, recovery: str
) -> str | None:
    """Queue a task and return its id, or ``None`` when the broker cannot be reached.

    Never raises for a broker that is down: the caller has committed its work, and ``recovery``
    says what picks it up later (logged, with the task's name and nothing else).
    """
    try:
        result = task.apply_async(args=args, countdown=countdown, retry=False)
    except Exception as exc:  # the broker's client raises several types; all mean "not queued"
        logger.warning("could not queue %s (%s); %s", task.name, type(exc).__name__, recovery)
        return None
    return str(result.id)
