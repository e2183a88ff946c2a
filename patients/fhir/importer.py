"""Write a parsed FHIR bundle into the records, all or nothing, idempotently.

Rows are keyed on FHIR ids: a resource seen before is compared field by field and left alone when
nothing changed, so importing the same bundle twice changes nothing. Every attempt, failed ones
included, leaves an :class:`~patients.models.ImportBatch` row saying what happened.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pghistory
from django.db import DataError, connection, models, transaction
from django.utils import timezone

from accounts.models import User
from patients.fhir.parse import (
    IMPORTED_TYPES,
    BundleError,
    NoteRec,
    ObservationRec,
    ParsedBundle,
    Problem,
    bundle_sha256,
    load_bundle_json,
    parse_bundle,
    record_values,
)
from patients.models import (
    ClinicalNote,
    Condition,
    Encounter,
    ImportBatch,
    Medication,
    Observation,
    Patient,
)
from patients.services import notes_changed
from patients.signals import records_changed

logger = logging.getLogger(__name__)


class ImportConflictError(Exception):
    """A resource id already belongs to another patient, or a signed note would change."""


def _counter() -> dict[str, dict[str, int]]:
    return {t: {"created": 0, "updated": 0, "unchanged": 0} for t in IMPORTED_TYPES}


def _upsert(
    model: type[Any],
    records: Iterable[Any],
    *,
    fields: Callable[[Any], dict[str, Any]],
    patient: Patient,
    batch: ImportBatch,
    tally: dict[str, int],
    versioned: bool = False,
) -> dict[str, models.Model]:
    """Create or update rows keyed on ``fhir_id``; returns them by fhir_id.

    With ``versioned`` a changed row is not updated: it is marked not current and a new version
    (same fhir_id, this batch) is written pointing back at it.
    """
    records = list(records)
    ids = [r.fhir_id for r in records]
    existing: dict[str, Any] = {
        obj.fhir_id: obj for obj in model._default_manager.filter(fhir_id__in=ids)
    }
    out: dict[str, models.Model] = {}
    to_create: list[models.Model] = []
    superseded: list[int] = []
    for rec in records:
        values = fields(rec)
        obj = existing.get(rec.fhir_id)
        if obj is None:
            obj = model(fhir_id=rec.fhir_id, patient=patient, import_batch=batch, **values)
            to_create.append(obj)
            tally["created"] += 1
        else:
            if obj.patient_id != patient.pk:
                raise ImportConflictError(
                    f"{model.__name__} {rec.fhir_id} already belongs to another patient"
                )
            changed = {k: v for k, v in values.items() if getattr(obj, k) != v}
            if changed and versioned:
                superseded.append(obj.pk)
                obj = model(
                    fhir_id=rec.fhir_id,
                    patient=patient,
                    import_batch=batch,
                    version=obj.version + 1,
                    previous_version=obj,
                    **values,
                )
                to_create.append(obj)
                tally["updated"] += 1
            elif changed:
                for k, v in changed.items():
                    setattr(obj, k, v)
                obj.import_batch = batch
                obj.save()
                tally["updated"] += 1
            else:
                tally["unchanged"] += 1
        out[rec.fhir_id] = obj
    if superseded:
        # before the new versions are inserted: one current version per fhir_id
        model._default_manager.filter(pk__in=superseded).update(is_current=False)
    model._default_manager.bulk_create(to_create, batch_size=1000)
    return out


def _observation_values(rec: ObservationRec) -> dict[str, Any]:
    return record_values(rec, "fhir_id", "components", "encounter_id")


def _write(parsed: ParsedBundle, batch: ImportBatch) -> tuple[Patient, dict[str, dict[str, int]]]:
    tally = _counter()
    p = parsed.patient
    patient_values = record_values(p, "fhir_id")
    patient = Patient.objects.filter(fhir_id=p.fhir_id).first()
    if patient is None:
        if Patient.objects.filter(mrn=p.mrn).exists():
            raise ImportConflictError(f"MRN {p.mrn} already belongs to another patient")
        patient = Patient.objects.create(fhir_id=p.fhir_id, import_batch=batch, **patient_values)
        tally["Patient"]["created"] += 1
    else:
        changed = {k: v for k, v in patient_values.items() if getattr(patient, k) != v}
        if changed:
            for k, v in changed.items():
                setattr(patient, k, v)
            patient.import_batch = batch
            patient.save()
            tally["Patient"]["updated"] += 1
        else:
            tally["Patient"]["unchanged"] += 1

    encounters = _upsert(
        Encounter,
        parsed.encounters,
        fields=lambda r: record_values(r, "fhir_id"),
        patient=patient,
        batch=batch,
        tally=tally["Encounter"],
    )

    def encounter_of(rec: Any) -> dict[str, Any]:
        return {"encounter": encounters.get(rec.encounter_id) if rec.encounter_id else None}

    def obs_fields(rec: ObservationRec) -> dict[str, Any]:
        return {**_observation_values(rec), **encounter_of(rec)}

    panels = _upsert(
        Observation,
        parsed.observations,
        fields=obs_fields,
        patient=patient,
        batch=batch,
        tally=tally["Observation"],
        versioned=True,
    )
    components: list[ObservationRec] = []
    component_parent: dict[str, tuple[Observation, int]] = {}
    for rec in parsed.observations:
        for index, comp in enumerate(rec.components):
            components.append(comp)
            component_parent[comp.fhir_id] = (panels[rec.fhir_id], index)  # type: ignore[assignment]
    # Components are rows of their own (so systolic readings are one indexed query) but are not
    # resources: they are not counted in the per-resource summary.
    _upsert(
        Observation,
        components,
        fields=lambda r: {
            **obs_fields(r),
            "parent": component_parent[r.fhir_id][0],
            "component_index": component_parent[r.fhir_id][1],
        },
        patient=patient,
        batch=batch,
        tally={"created": 0, "updated": 0, "unchanged": 0},
        versioned=True,
    )
    _upsert(
        Condition,
        parsed.conditions,
        fields=lambda r: {
            **record_values(r, "fhir_id", "encounter_id"),
            **encounter_of(r),
        },
        patient=patient,
        batch=batch,
        tally=tally["Condition"],
    )
    _upsert(
        Medication,
        parsed.medications,
        fields=lambda r: {
            **record_values(r, "fhir_id", "encounter_id"),
            **encounter_of(r),
        },
        patient=patient,
        batch=batch,
        tally=tally["MedicationRequest"],
    )
    _import_notes(
        parsed.notes,
        patient=patient,
        batch=batch,
        encounters=encounters,
        tally=tally["DocumentReference"],
    )
    return patient, tally


def _import_notes(
    notes: list[NoteRec],
    *,
    patient: Patient,
    batch: ImportBatch,
    encounters: dict[str, Any],
    tally: dict[str, int],
) -> None:
    authors = {
        u.practitioner_id: u
        for u in User.objects.filter(
            practitioner_id__in={n.author_reference for n in notes if n.author_reference}
        )
    }

    by_id = {n.fhir_id: n for n in notes}
    known = {
        n.fhir_id: n
        for n in ClinicalNote.objects.filter(
            fhir_id__in=[n.replaces_id for n in notes if n.replaces_id]
        )
    }

    def version_of(r: NoteRec) -> int:
        if not r.replaces_id:
            return 1
        if r.replaces_id in by_id:
            return version_of(by_id[r.replaces_id]) + 1
        previous = known.get(r.replaces_id)
        return previous.version + 1 if previous else 1

    def fields(r: NoteRec) -> dict[str, Any]:
        values = record_values(r, "fhir_id", "encounter_id", "replaces_id")
        values["version"] = version_of(r)
        values["author"] = authors.get(r.author_reference)
        values["encounter"] = encounters.get(r.encounter_id) if r.encounter_id else None
        values["signed_at"] = r.written_at if r.status == "signed" else None
        return values

    existing = {
        n.fhir_id: n for n in ClinicalNote.objects.filter(fhir_id__in=[n.fhir_id for n in notes])
    }
    for rec in notes:
        note = existing.get(rec.fhir_id)
        if note is not None and note.is_signed:
            values = fields(rec)
            if any(getattr(note, k) != v for k, v in values.items()):
                raise ImportConflictError(
                    f"DocumentReference {rec.fhir_id} is a signed note and the bundle changes it; "
                    "amendments must arrive as a new DocumentReference"
                )
    # Originals before amendments, so each amendment can point at the version it replaces.
    ordered = sorted(notes, key=version_of)
    saved = _upsert(ClinicalNote, ordered, fields=fields, patient=patient, batch=batch, tally=tally)
    for rec in ordered:
        if rec.replaces_id:
            previous: Any = saved.get(rec.replaces_id) or known.get(rec.replaces_id)
            amendment = saved[rec.fhir_id]
            if (
                previous is not None
                and getattr(amendment, "previous_version_id", None) != previous.pk
            ):
                ClinicalNote.objects.filter(pk=amendment.pk).update(previous_version=previous.pk)


def _history_context(*, batch: ImportBatch, user: User | None) -> AbstractContextManager[Any]:
    """Every history event the import writes names its batch and who imported it."""
    if connection.vendor != "postgresql":  # the SQLite demo has no history triggers
        return nullcontext()
    return pghistory.context(
        import_batch=batch.pk, actor=user.username if user else "system:import"
    )


def _parse(raw: bytes, *, now: dt.datetime | None, sha: str) -> ParsedBundle:
    try:
        return parse_bundle(load_bundle_json(raw), now=now, sha256=sha)
    except RecursionError as exc:
        # json.loads (and anything walking the tree) recurses once per level: a bundle nested
        # thousands of levels deep is malformed input, not a server error
        problem = Problem(None, "", "(file)", "the JSON is nested too deeply to be a FHIR bundle")
        raise BundleError([problem]) from exc


def bundle_import(
    *,
    raw: bytes,
    channel: str,
    filename: str = "",
    user: User | None = None,
    now: dt.datetime | None = None,
) -> ImportBatch:
    """Import one bundle (its raw bytes) in one transaction.

    Returns the batch. On any problem nothing is written except a ``failed`` batch carrying the
    problems, and :class:`BundleError` is raised.
    """
    sha = bundle_sha256(raw)
    batch = ImportBatch(
        channel=channel, filename=filename[:255], sha256=sha, size_bytes=len(raw), created_by=user
    )
    try:
        parsed = _parse(raw, now=now, sha=sha)
        with transaction.atomic():
            batch.save()
            with _history_context(batch=batch, user=user):
                patient, tally = _write(parsed, batch)
            changed = any(t["created"] or t["updated"] for t in tally.values())
            batch.patient = patient
            # observation values of this bundle kept with a flag (docs/import-policy.md)
            tally["Observation"].update(parsed.flag_counts)
            batch.counts = {
                **tally,
                "skipped": {
                    t: n
                    for t, n in sorted(parsed.resource_counts.items())
                    if t not in IMPORTED_TYPES
                },
            }
            batch.status = ImportBatch.Status.SUCCEEDED if changed else ImportBatch.Status.UNCHANGED
            batch.finished_at = timezone.now()
            batch.save()
            if any(
                t["created"] or t["updated"]
                for kind, t in tally.items()
                if kind != "DocumentReference"
            ):
                records_changed.send(sender=ImportBatch, patient_ids=[patient.pk], reason="import")
            note_tally = tally["DocumentReference"]
            if note_tally["created"] or note_tally["updated"]:
                notes_changed(
                    note_ids=ClinicalNote.objects.filter(
                        fhir_id__in=[n.fhir_id for n in parsed.notes]
                    ).values_list("pk", flat=True),
                    triggered_by=user.username if user else "system:import",
                )
    except BundleError as exc:
        _record_failure(batch, [p.as_dict() for p in exc.problems])
        raise
    except ImportConflictError as exc:
        _record_failure(batch, [Problem(None, "", "id", str(exc)).as_dict()])
        raise BundleError([Problem(None, "", "id", str(exc))]) from exc
    except DataError as exc:
        # the parser checks every length and range it knows of; this is the last line of defence
        problem = Problem(None, "", "(database)", f"the database refused a value: {exc}".strip())
        _record_failure(batch, [problem.as_dict()])
        raise BundleError([problem]) from exc
    logger.info(
        "bundle imported",
        extra={"import_batch": batch.pk, "status": batch.status, "sha256": sha, "channel": channel},
    )
    return batch


def _record_failure(batch: ImportBatch, problems: list[dict[str, Any]]) -> None:
    # The data transaction has rolled back; the failed attempt itself is kept so it is visible.
    batch.pk = None
    batch.status = ImportBatch.Status.FAILED
    batch.patient = None
    batch.counts = {}
    batch.errors = _storable(problems)
    batch.filename = _storable(batch.filename)
    batch.finished_at = timezone.now()
    batch.save()
    logger.warning(
        "bundle import failed",
        extra={"import_batch": batch.pk, "sha256": batch.sha256, "problems": len(problems)},
    )


def _storable(value: Any) -> Any:
    """``value`` with NUL characters replaced: PostgreSQL's text and jsonb cannot hold them, and
    a problem quoting a broken bundle's own strings may contain one."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value
