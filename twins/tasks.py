"""Celery tasks of the twin: ids in, one service call each. Retry and failure policy live here.

Queues: recalibrations on the default queue, nightly chunks on the batch queue, what-ifs on the
interactive queue (``settings.CELERY_TASK_ROUTES``), so a clinician's what-if never waits behind the
nightly run when a worker serves the interactive queue.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from twins import services

logger = logging.getLogger(__name__)


class _RecalibrateTask(Task):  # type: ignore[misc]  # Celery ships no type information
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        services.twin_failure_record(patient_ids=[args[0]], error=f"{type(exc).__name__}: {exc}")


class _ChunkTask(Task):  # type: ignore[misc]
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        services.recompute_chunk_fail(chunk_id=args[0], error=f"{type(exc).__name__}: {exc}")


class _WhatIfTask(Task):  # type: ignore[misc]
    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        services.whatif_fail(run_id=args[0], error=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    base=_RecalibrateTask,
    autoretry_for=(Exception,),
    retry_backoff=10,
    retry_backoff_max=600,
    max_retries=3,
    soft_time_limit=120,
    time_limit=150,
    acks_late=True,
)
def twin_recalibrate(self: Task, patient_id: int) -> str:
    outcome = services.twin_recalibrate(patient_id=patient_id, task_id=self.request.id or "")
    if outcome.deferred_seconds > 0:
        # more readings are still arriving: look again when the quiet period is over
        self.apply_async(args=[patient_id], countdown=outcome.deferred_seconds, retry=False)
        return "deferred"
    return "done" if outcome.counts else "nothing pending"


@shared_task(
    bind=True,
    base=_ChunkTask,
    autoretry_for=(Exception,),
    retry_backoff=30,
    retry_backoff_max=900,
    max_retries=3,
    soft_time_limit=900,
    time_limit=960,
    acks_late=True,
    reject_on_worker_lost=True,
)
def twin_recompute_chunk(self: Task, chunk_id: int) -> dict[str, int]:
    counts = services.recompute_chunk_execute(chunk_id=chunk_id, task_id=self.request.id or "")
    return {"done": counts.done, "skipped": counts.skipped, "failed": counts.failed}


@shared_task(bind=True, soft_time_limit=600, time_limit=660)
def twin_nightly_dispatch(self: Task) -> int:
    """Beat: select the patients due and fan out chunks. Returns the run id."""
    run = services.recompute_run_start(task_id=self.request.id or "")
    return run.pk


@shared_task(soft_time_limit=50, time_limit=55)
def twin_sweep() -> dict[str, int]:
    """Beat, every minute: queue work whose message is missing (broker down) or was lost."""
    return services.twin_sweep()


@shared_task(
    bind=True,
    base=_WhatIfTask,
    autoretry_for=(Exception,),
    retry_backoff=2,
    max_retries=2,
    soft_time_limit=60,
    time_limit=75,
    acks_late=True,
)
def twin_whatif(self: Task, run_id: int) -> str:
    run = services.whatif_execute(run_id=run_id, task_id=self.request.id or "")
    return run.status
