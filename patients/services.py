"""Writes around clinical notes: analysing them with the note reader and refreshing summaries.

Tasks call these with ids; they are idempotent (a note whose text and pipeline version have not
changed is not analysed again; a summary whose inputs have not changed is not rebuilt) and leave a
visible ``failed`` state with the error when something goes wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

import nlp
from audit import recorder
from nlp.types import NoteAnalysis
from patients import coding
from patients.models import (
    ClinicalNote,
    Medication,
    NoteAnalysisResult,
    NoteSummary,
    Observation,
    Patient,
    TaskStatus,
)
from patients.selectors import notes_for
from twinportal.celery import queue_task

if TYPE_CHECKING:
    from nlp.summarise import PatientSummary

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:note-reader"
#: Record observations compared with numbers quoted in notes (``nlp`` checks them against these).
SUMMARY_OBSERVATION_WINDOW = dt.timedelta(days=730)
_SUMMARY_VARIABLES = (
    "sbp",
    "dbp",
    "hba1c",
    "glucose",
    "ldl",
    "egfr",
    "weight",
    "total_chol",
    "hdl",
    "bmi",
)


def _pipeline_version() -> str:
    from nlp.pipeline import PIPELINE_VERSION

    return PIPELINE_VERSION


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def note_analysis_run(*, note_id: int, task_id: str = "") -> NoteAnalysisResult:
    """Analyse one note (unless its current analysis is already up to date) and store the result."""
    note = ClinicalNote.objects.get(pk=note_id)
    recorder.system_access(
        actor_name=SYSTEM_ACTOR,
        resource="patients.services.note_analysis_run",
        patient_ids=[note.patient_id],
        write=False,
    )
    version, text_sha = _pipeline_version(), _sha(note.text)
    result, _ = NoteAnalysisResult.objects.get_or_create(note=note)
    if result.status == TaskStatus.SUCCEEDED and (result.pipeline_version, result.text_sha256) == (
        version,
        text_sha,
    ):
        return result
    try:
        analysis = nlp.analyse(note.text)
    except Exception as exc:
        NoteAnalysisResult.objects.filter(pk=result.pk).update(
            status=TaskStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], task_id=task_id
        )
        raise
    result.status = TaskStatus.SUCCEEDED
    result.pipeline_version = version
    result.text_sha256 = text_sha
    result.result = analysis.to_dict()
    result.error = ""
    result.task_id = task_id
    result.save()
    return result


def _stored_analysis(note: ClinicalNote, version: str) -> NoteAnalysis | None:
    stored: NoteAnalysisResult | None = getattr(note, "analysis", None)
    if (
        stored is not None
        and stored.status == TaskStatus.SUCCEEDED
        and stored.pipeline_version == version
        and stored.text_sha256 == _sha(note.text)
        and stored.result
    ):
        return NoteAnalysis.from_dict(stored.result)
    return None


def _structured_inputs(
    patient: Patient, now: dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    meds = [
        {"name": m.name, "code": m.rxnorm_code or None, "status": m.status}
        for m in Medication.objects.filter(patient=patient).order_by("pk")
    ]
    codes = [code for key in _SUMMARY_VARIABLES for code in coding.VARIABLE_BY_KEY[key].codes]
    observations = [
        {"code": o.code, "value": o.value, "unit": o.unit, "time": o.effective_at.isoformat()}
        for o in Observation.objects.filter(
            patient=patient,
            code__in=codes,
            value__isnull=False,
            effective_at__gte=now - SUMMARY_OBSERVATION_WINDOW,
        ).order_by("effective_at", "pk")
    ]
    return meds, observations


def note_summary_refresh(
    *,
    patient_id: int,
    triggered_by: str = SYSTEM_ACTOR,
    task_id: str = "",
    now: dt.datetime | None = None,
    summariser: Callable[..., PatientSummary] | None = None,
) -> NoteSummary:
    """Rebuild one patient's cross-note summary from their signed notes (current versions).

    ``summariser`` defaults to :func:`nlp.summarise` (a seam for tests).
    """
    summariser = summariser or nlp.summarise
    patient = Patient.objects.get(pk=patient_id)
    recorder.system_access(
        actor_name=SYSTEM_ACTOR,
        resource="patients.services.note_summary_refresh",
        patient_ids=[patient.pk],
        write=False,
    )
    now = now or timezone.now()
    version = _pipeline_version()
    notes = list(
        notes_for(patient=patient)
        .filter(status=ClinicalNote.Status.SIGNED)
        .select_related("analysis")
    )
    meds, observations = _structured_inputs(patient, now)
    digest = _sha(
        json.dumps(
            [
                version,
                [(n.fhir_id, _sha(n.text)) for n in notes],
                meds,
                observations,
                now.date().isoformat(),
            ],
            sort_keys=True,
            default=str,
        )
    )
    summary, _ = NoteSummary.objects.get_or_create(patient=patient)
    if summary.status == TaskStatus.SUCCEEDED and summary.inputs_sha256 == digest:
        return summary
    inputs = []
    for note in notes:
        analysis = _stored_analysis(note, version)
        if analysis is None:
            analysis = NoteAnalysis.from_dict(
                note_analysis_run(note_id=note.pk, task_id=task_id).result or {}
            )
        inputs.append(
            {
                "id": str(note.pk),
                "author": note.author_name,
                "role": note.author_role,
                "time": note.written_at,
                "text": note.text,
                "analysis": analysis,
            }
        )
    try:
        result = summariser(
            inputs, structured_medications=meds, structured_observations=observations, now=now
        )
    except Exception as exc:
        NoteSummary.objects.filter(pk=summary.pk).update(
            status=TaskStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            task_id=task_id,
            triggered_by=triggered_by,
        )
        raise
    summary.status = TaskStatus.SUCCEEDED
    summary.pipeline_version = version
    summary.inputs_sha256 = digest
    summary.summary = result.to_dict()
    summary.note_count = len(notes)
    summary.error = ""
    summary.task_id = task_id
    summary.triggered_by = triggered_by
    summary.computed_at = now
    summary.save()
    return summary


def notes_changed(*, note_ids: Iterable[int], triggered_by: str = SYSTEM_ACTOR) -> None:
    """After the surrounding transaction commits: analyse each note, then refresh its patient's summary."""
    from patients.tasks import note_analyse as note_analyse_task
    from patients.tasks import patient_note_summary_refresh as summary_refresh_task

    ids = list(note_ids)
    if not ids:
        return
    patient_ids = sorted(
        set(ClinicalNote.objects.filter(pk__in=ids).values_list("patient_id", flat=True))
    )

    def enqueue() -> None:
        # The notes are committed; if the broker is down, the nightly refresh finds their missing
        # analyses and stale summaries (stale_summary_patient_ids), so nothing is lost.
        recovery = "the nightly note refresh will pick it up"
        for note_id in ids:
            if queue_task(note_analyse_task, args=[note_id], recovery=recovery) is None:
                return
        for patient_id in patient_ids:
            # A little later, so the analyses above are usually stored by then; if not, the
            # summary analyses what it still needs itself.
            queued = queue_task(
                summary_refresh_task,
                args=[patient_id, triggered_by],
                countdown=5,
                recovery=recovery,
            )
            if queued is None:
                return

    transaction.on_commit(enqueue)


def stale_summary_patient_ids(*, now: dt.datetime | None = None) -> list[int]:
    """Patients with signed notes whose summary is missing, failed, from an older pipeline, older
    than their newest note, or from before today ("recent" and recency weights move with the date)."""
    from django.db.models import Exists, F, Max, OuterRef, Q

    now = now or timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    has_notes = Exists(
        ClinicalNote.objects.filter(patient=OuterRef("pk"), status=ClinicalNote.Status.SIGNED)
    )
    qs = (
        Patient.objects.filter(has_notes)
        .annotate(last_note=Max("notes__created_at"))
        .filter(
            Q(note_summary__isnull=True)
            | ~Q(note_summary__status=TaskStatus.SUCCEEDED)
            | ~Q(note_summary__pipeline_version=_pipeline_version())
            | Q(note_summary__computed_at__lt=F("last_note"))
            | Q(note_summary__computed_at__lt=start_of_day)
        )
    )
    return list(qs.values_list("pk", flat=True).order_by("pk"))


def note_sign(*, note: ClinicalNote, now: dt.datetime | None = None) -> ClinicalNote:
    """Sign a draft: from then on it never changes (amendments are new versions)."""
    if note.is_signed:
        raise ValueError(f"note {note.fhir_id} is already signed")
    note.status = ClinicalNote.Status.SIGNED
    note.signed_at = now or timezone.now()
    note.save(update_fields=["status", "signed_at"])
    notes_changed(
        note_ids=[note.pk], triggered_by=note.author.get_username() if note.author else SYSTEM_ACTOR
    )
    return note


def note_amend(
    *, note: ClinicalNote, text: str, author: Any, now: dt.datetime | None = None
) -> ClinicalNote:
    """Amend a signed note: a new signed version pointing at the one it replaces, which is kept."""
    if not note.is_signed:
        raise ValueError(f"note {note.fhir_id} is a draft; edit it instead of amending it")
    if hasattr(note, "next_version"):
        raise ValueError(f"note {note.fhir_id} has already been amended; amend its latest version")
    if not text.strip():
        raise ValueError("text: an amendment cannot be empty")
    now = now or timezone.now()
    with transaction.atomic():
        amendment = ClinicalNote.objects.create(
            patient=note.patient,
            author=author,
            author_name=author.get_full_name() or author.get_username(),
            author_role=getattr(author, "professional_role", "") or note.author_role,
            # A stable Practitioner id, so an exported amendment re-imports with the same author.
            author_reference=getattr(author, "practitioner_id", "")
            or f"twinportal-user-{author.pk}",
            written_at=now,
            note_type_code=note.note_type_code,
            note_type=note.note_type,
            title=note.title,
            text=text,
            status=ClinicalNote.Status.SIGNED,
            signed_at=now,
            version=note.version + 1,
            previous_version=note,
            encounter=note.encounter,
        )
        notes_changed(note_ids=[amendment.pk], triggered_by=author.get_username())
    return amendment
