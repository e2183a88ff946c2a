"""Export then import into an empty database reproduces the records exactly."""

from __future__ import annotations

import json

import pytest
from django.forms.models import model_to_dict

from patients.fhir.exporter import patient_bundle
from patients.fhir.importer import bundle_import
from patients.models import (
    ClinicalNote,
    Condition,
    Encounter,
    ImportBatch,
    Medication,
    Observation,
    Patient,
)
from tests.conftest import SYNTHEA
from tests.patients import bundles

pytestmark = pytest.mark.django_db

_IGNORED = {
    "id",
    "import_batch",
    "patient",
    "encounter",
    "parent",
    "previous_version",
    "author",
    "created_at",
    "updated_at",
}


def snapshot() -> dict[str, list[dict]]:
    """Every record by FHIR id, with relations as FHIR ids instead of database keys."""
    out: dict[str, list[dict]] = {}
    for model in (Patient, Encounter, Observation, Condition, Medication, ClinicalNote):
        rows = []
        for obj in model.objects.all():
            row = {k: v for k, v in model_to_dict(obj).items() if k not in _IGNORED}
            for rel in ("patient", "encounter", "parent", "previous_version"):
                if hasattr(obj, f"{rel}_id"):
                    target = getattr(obj, rel)
                    row[rel] = target.fhir_id if target is not None else None
            rows.append(row)
        out[model.__name__] = sorted(rows, key=lambda r: r["fhir_id"])
    return out


def test_export_then_import_into_an_empty_database_reproduces_the_records() -> None:
    sources = [*SYNTHEA[:3], None]
    for path in sources:
        raw = (
            path.read_bytes()
            if path
            else bundles.dumps(bundles.with_note(bundles.load(SYNTHEA[3]), b"Amlodipine started."))
        )
        bundle_import(raw=raw, channel="command")
    from accounts.services import user_create
    from patients.services import note_amend

    author = user_create(username="gp.amends", password="a-long-test-password", role="clinician")
    note_amend(
        note=ClinicalNote.objects.get(),
        text="Amlodipine 5 mg started; review in 4 weeks.",
        author=author,
    )
    before = snapshot()
    assert len(before["ClinicalNote"]) == 2
    exported = [json.dumps(patient_bundle(p)).encode() for p in Patient.objects.all()]

    for note in ClinicalNote.objects.order_by("-version"):  # amendments protect what they replace
        note.delete()
    # import batches stay: they are provenance and cannot be deleted (property 15)
    for model in (Observation, Medication, Condition, Encounter, Patient):
        model.objects.all().delete()
    assert Patient.objects.count() == 0

    for raw in exported:
        assert bundle_import(raw=raw, channel="command").status == ImportBatch.Status.SUCCEEDED
    after = snapshot()
    assert len(after["Patient"]) == 4
    for name in before:
        assert after[name] == before[name], name
