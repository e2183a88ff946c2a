"""The Celery application: configured from Django settings (``CELERY_*``), tasks autodiscovered."""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.production")
# Parallelism comes from worker processes (one per core); BLAS threads inside each would fight
# over the same cores and make the twin's batched solves several times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

logger = logging.getLogger(__name__)

app = Celery("twinportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: glibc ``mallopt`` options (malloc.h) and the values a worker sets: a nightly chunk allocates
#: and frees arrays of tens of megabytes many times over; by default each comes from a fresh
#: memory map whose pages the kernel must zero again, which cost about a tenth of a worker's CPU.
#: Kept in the heap instead (threshold at glibc's maximum, 32 MiB), with free memory returned to
#: the system beyond 256 MiB.
_MALLOPT = ((-3, 32 << 20), (-1, 256 << 20), (-2, 64 << 20))  # MMAP_THRESHOLD, TRIM, TOP_PAD


def tune_malloc() -> bool:
    """Set ``_MALLOPT`` in this process; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in _MALLOPT)


def _tune_worker_malloc(**_kwargs: Any) -> None:
    if not tune_malloc():
        logger.info("malloc tuning not available on this C library")


# the main process (solo pool) and each forked pool process
worker_init.connect(_tune_worker_malloc, weak=False)
worker_process_init.connect(_tune_worker_malloc, weak=False)


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
