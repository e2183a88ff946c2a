"""Fast first load of many generated bundles (the demo seed and ``generate_cohort`` load tests).

Unlike the importer, this does not compare with existing rows: patients already present (by FHIR
id) are skipped whole, everything else is inserted with bulk statements, one transaction per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db import transaction

from accounts.models import User
from patients.fhir.parse import ParsedBundle, parse_bundle, record_values
from patients.models import (
    ClinicalNote,
    Condition,
    Encounter,
    ImportBatch,
    Medication,
    Observation,
    Patient,
)


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def cohort_bulk_load(
    *,
    bundles: Iterable[dict[str, Any]],
    chunk_size: int = 200,
    validate: bool = False,
    batch: ImportBatch | None = None,
) -> dict[str, int]:
    """Insert the bundles' records; returns counts per resource type (components not counted)."""
    totals = {
        "Patient": 0,
        "Encounter": 0,
        "Observation": 0,
        "Condition": 0,
        "MedicationRequest": 0,
        "DocumentReference": 0,
        "skipped": 0,
    }
    authors = {u.practitioner_id: u for u in User.objects.exclude(practitioner_id="")}
    for chunk in _chunks(bundles, chunk_size):
        parsed = [parse_bundle(b, validate=validate) for b in chunk]
        existing = set(
            Patient.objects.filter(fhir_id__in=[p.patient.fhir_id for p in parsed]).values_list(
                "fhir_id", flat=True
            )
        )
        fresh = [p for p in parsed if p.patient.fhir_id not in existing]
        totals["skipped"] += len(parsed) - len(fresh)
        with transaction.atomic():
            _insert(fresh, authors, batch, totals)
    return totals


def _insert(
    parsed: list[ParsedBundle],
    authors: dict[str, User],
    batch: ImportBatch | None,
    totals: dict[str, int],
) -> None:
    patients = Patient.objects.bulk_create(
        [
            Patient(
                fhir_id=p.patient.fhir_id, import_batch=batch, **record_values(p.patient, "fhir_id")
            )
            for p in parsed
        ]
    )
    totals["Patient"] += len(patients)
    encounters: dict[str, Encounter] = {}
    enc_rows = []
    for patient, p in zip(patients, parsed, strict=True):
        for e in p.encounters:
            enc = Encounter(
                patient=patient,
                fhir_id=e.fhir_id,
                import_batch=batch,
                **record_values(e, "fhir_id"),
            )
            encounters[e.fhir_id] = enc
            enc_rows.append(enc)
    Encounter.objects.bulk_create(enc_rows, batch_size=2000)
    totals["Encounter"] += len(enc_rows)

    parents: list[Observation] = []
    children: list[tuple[Observation, int, Any]] = []
    conditions: list[Condition] = []
    medications: list[Medication] = []
    notes: list[ClinicalNote] = []

    def row(model: Any, patient: Patient, rec: Any, *drop: str, **extra: Any) -> Any:
        return model(
            patient=patient,
            fhir_id=rec.fhir_id,
            encounter=encounters.get(rec.encounter_id or ""),
            import_batch=batch,
            **extra,
            **record_values(rec, "fhir_id", "encounter_id", *drop),
        )

    for patient, p in zip(patients, parsed, strict=True):
        for o in p.observations:
            parent = row(Observation, patient, o, "components")
            parents.append(parent)
            children.extend((parent, i, c) for i, c in enumerate(o.components))
        conditions.extend(row(Condition, patient, c) for c in p.conditions)
        medications.extend(row(Medication, patient, m) for m in p.medications)
        notes.extend(
            row(
                ClinicalNote,
                patient,
                n,
                "replaces_id",
                author=authors.get(n.author_reference),
                signed_at=n.written_at if n.status == "signed" else None,
            )
            for n in p.notes
        )
    Observation.objects.bulk_create(parents, batch_size=5000)
    Observation.objects.bulk_create(
        [
            Observation(
                patient=parent.patient,
                fhir_id=c.fhir_id,
                parent=parent,
                component_index=i,
                encounter=parent.encounter,
                import_batch=batch,
                **record_values(c, "fhir_id", "components", "encounter_id"),
            )
            for parent, i, c in children
        ],
        batch_size=5000,
    )
    Condition.objects.bulk_create(conditions, batch_size=2000)
    Medication.objects.bulk_create(medications, batch_size=2000)
    ClinicalNote.objects.bulk_create(notes, batch_size=1000)
    totals["Observation"] += len(parents)
    totals["Condition"] += len(conditions)
    totals["MedicationRequest"] += len(medications)
    totals["DocumentReference"] += len(notes)
