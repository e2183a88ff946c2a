"""Notes are analysed when saved and each patient's summary refreshed, by a real Celery worker."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from patients import services
from patients.fhir.importer import bundle_import
from patients.models import ClinicalNote, NoteAnalysisResult, NoteSummary, TaskStatus
from tests.patients import bundles

NOTE = (
    "HISTORY: Hypertension reviewed in cardiology clinic. She denies chest pain or ankle swelling. "
    "BP 152/94 today. PLAN: Start amlodipine 5 mg once daily. Recheck BP in 4 weeks."
)


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[object]:
    from celery.contrib.testing.worker import start_worker

    from twinportal.celery import app

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


def wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError("timed out waiting for the Celery worker")


@pytest.mark.django_db(transaction=True)
def test_an_imported_note_is_analysed_and_summarised_by_the_worker(celery_worker) -> None:
    batch = bundle_import(
        raw=bundles.dumps(bundles.with_note(bundles.load(), NOTE.encode())), channel="api"
    )
    note = ClinicalNote.objects.get()
    wait_for(
        lambda: NoteSummary.objects.filter(
            patient=batch.patient, status=TaskStatus.SUCCEEDED
        ).exists()
    )

    analysis = NoteAnalysisResult.objects.get(note=note)
    assert analysis.status == TaskStatus.SUCCEEDED and analysis.task_id
    meds = [e for e in analysis.result["entities"] if e["label"] == "medication"]
    assert any(e["normalized"] == "amlodipine" and e["action"] == "start" for e in meds)

    summary = NoteSummary.objects.get(patient=batch.patient)
    assert summary.note_count == 1 and summary.triggered_by == "system:import"
    med_items = summary.summary["medications"]
    amlodipine = next(m for m in med_items if m["name"] == "amlodipine")
    source = amlodipine["mentions"][-1] if "mentions" in amlodipine else amlodipine["latest"]
    assert source["note_id"] == str(note.pk)
    assert NOTE[source["start"] : source["end"]] == source["text"]


@pytest.mark.django_db
def test_refreshing_an_unchanged_summary_is_idempotent() -> None:
    batch = bundle_import(
        raw=bundles.dumps(bundles.with_note(bundles.load(), NOTE.encode())), channel="api"
    )
    first = services.note_summary_refresh(patient_id=batch.patient.pk)
    again = services.note_summary_refresh(patient_id=batch.patient.pk)
    assert again.inputs_sha256 == first.inputs_sha256 and again.computed_at == first.computed_at


@pytest.mark.django_db
def test_a_failed_summary_is_left_visible_with_its_error() -> None:
    batch = bundle_import(
        raw=bundles.dumps(bundles.with_note(bundles.load(), NOTE.encode())), channel="api"
    )

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("summariser unavailable")

    with pytest.raises(RuntimeError):
        services.note_summary_refresh(patient_id=batch.patient.pk, summariser=broken)
    summary = NoteSummary.objects.get(patient=batch.patient)
    assert summary.status == TaskStatus.FAILED and "summariser unavailable" in summary.error


@pytest.mark.django_db
def test_the_nightly_dispatcher_selects_only_stale_summaries() -> None:
    batch = bundle_import(
        raw=bundles.dumps(bundles.with_note(bundles.load(), NOTE.encode())), channel="api"
    )
    patient = batch.patient
    assert services.stale_summary_patient_ids() == [patient.pk]
    services.note_summary_refresh(patient_id=patient.pk)
    assert services.stale_summary_patient_ids() == []
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert services.stale_summary_patient_ids(now=tomorrow) == [patient.pk]
