"""Celery tasks: ids in, one service call. Retry and failure policy live here."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task

from patients import services

logger = logging.getLogger(__name__)

#: The nightly refresh fans out in chunks of this many patients per task.
NIGHTLY_CHUNK = 200


@shared_task(
    bind=True,
    max_retries=3,
    default_retry_delay=30,
    soft_time_limit=120,
    time_limit=150,
    acks_late=True,
)
def note_analyse(self: Task, note_id: int) -> str:
    result = services.note_analysis_run(note_id=note_id, task_id=self.request.id or "")
    return result.status


@shared_task(
    bind=True,
    max_retries=3,
    default_retry_delay=60,
    soft_time_limit=300,
    time_limit=360,
    acks_late=True,
)
def patient_note_summary_refresh(
    self: Task, patient_id: int, triggered_by: str = services.SYSTEM_ACTOR
) -> str:
    summary = services.note_summary_refresh(
        patient_id=patient_id, triggered_by=triggered_by, task_id=self.request.id or ""
    )
    return summary.status


@shared_task(bind=True, soft_time_limit=1800, time_limit=1900, acks_late=True)
def note_summaries_refresh_chunk(self: Task, patient_ids: list[int]) -> dict[str, int]:
    """Refresh a chunk of summaries; one patient's failure is recorded on it and does not stop the rest."""
    done = failed = 0
    for patient_id in patient_ids:
        try:
            services.note_summary_refresh(
                patient_id=patient_id, triggered_by="system:nightly", task_id=self.request.id or ""
            )
            done += 1
        except Exception:
            failed += 1
            logger.exception("note summary refresh failed", extra={"patient_id": patient_id})
    return {"refreshed": done, "failed": failed}


@shared_task(soft_time_limit=300, time_limit=360)
def note_summaries_nightly() -> int:
    """Dispatcher: select stale summaries and fan out chunked refreshes. Returns the patients queued."""
    ids = services.stale_summary_patient_ids()
    for start in range(0, len(ids), NIGHTLY_CHUNK):
        note_summaries_refresh_chunk.delay(ids[start : start + NIGHTLY_CHUNK])
    logger.info("nightly note summaries queued", extra={"patients": len(ids)})
    return len(ids)
