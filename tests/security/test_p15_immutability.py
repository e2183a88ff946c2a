"""Property 15: signed notes and imported observations are immutable; a change is a new version
that keeps the old one with its provenance (the import batch that brought it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, ProgrammingError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from patients.fhir.importer import bundle_import
from patients.models import ClinicalNote, ImportBatch, Observation, SignedNoteError
from tests.patients import bundles
from tests.patients.bundles import dumps, load, weight_index
from tests.second_factor import verified_login
from twins.selectors import twin_inputs_for

pytestmark = pytest.mark.django_db

WEIGHT = "29463-7"


def reimport_with_weight(b: dict[str, Any], kg: float) -> ImportBatch:
    b["entry"][weight_index(b)]["resource"]["valueQuantity"].update(
        {"value": kg, "unit": "kg", "code": "kg"}
    )
    return bundle_import(raw=dumps(b), channel="command")


def test_a_changed_value_in_a_reimported_bundle_is_a_new_version_keeping_the_old() -> None:
    b = load()
    first = bundle_import(raw=dumps(b), channel="command")
    fhir_id = b["entry"][weight_index(b)]["resource"]["id"]
    original = Observation.objects.get(fhir_id=fhir_id)

    second = reimport_with_weight(b, 123.4)

    assert second.counts["Observation"]["updated"] == 1
    versions = list(Observation.versions.filter(fhir_id=fhir_id).order_by("version"))
    assert [(o.version, o.is_current) for o in versions] == [(1, False), (2, True)]
    old, new = versions
    assert old.pk == original.pk and old.value == original.value
    assert old.import_batch_id == first.pk and new.import_batch_id == second.pk
    assert new.value == 123.4 and new.previous_version_id == old.pk
    assert Observation.objects.get(fhir_id=fhir_id).pk == new.pk


def test_reimporting_the_changed_bundle_again_writes_no_third_version() -> None:
    b = load()
    bundle_import(raw=dumps(b), channel="command")
    reimport_with_weight(b, 123.4)
    again = bundle_import(raw=dumps(b), channel="command")
    assert again.status == ImportBatch.Status.UNCHANGED
    fhir_id = b["entry"][weight_index(b)]["resource"]["id"]
    assert Observation.versions.filter(fhir_id=fhir_id).count() == 2


def test_a_changed_blood_pressure_component_is_versioned_under_the_same_panel() -> None:
    b = load()
    bundle_import(raw=dumps(b), channel="command")
    i = bundles.bp_index(b)
    panel_id = b["entry"][i]["resource"]["id"]
    b["entry"][i]["resource"]["component"][0]["valueQuantity"]["value"] = 151
    bundle_import(raw=dumps(b), channel="command")
    component = Observation.objects.get(fhir_id=f"{panel_id}#0")
    assert component.value == 151 and component.version == 2
    assert component.parent == Observation.objects.get(fhir_id=panel_id)
    assert Observation.versions.filter(fhir_id=f"{panel_id}#0", is_current=False).count() == 1


def test_the_twin_reads_only_current_versions() -> None:
    b = load()
    patient = bundle_import(raw=dumps(b), channel="command").patient
    assert patient is not None
    now = timezone.now()
    before = twin_inputs_for([patient.pk], reference=now)[0]
    reimport_with_weight(b, 123.4)
    after = twin_inputs_for([patient.pk], reference=now)[0]
    assert len(after.readings) == len(before.readings)
    assert after.inputs_sha256 != before.inputs_sha256
    assert 123.4 in [r.value for r in after.readings]
    assert {r.observation_id for r in after.readings} <= set(
        Observation.objects.values_list("pk", flat=True)
    )


def test_the_database_refuses_to_change_an_observations_value_in_place() -> None:
    bundle_import(raw=dumps(load()), channel="command")
    obs = Observation.objects.filter(value__isnull=False).first()
    assert obs is not None
    with (
        pytest.raises(ProgrammingError, match="Cannot update rows from patients_observation"),
        transaction.atomic(),
    ):
        Observation.objects.filter(pk=obs.pk).update(value=1.0)
    # what is not a measurement may change: the review flag and which version is current
    Observation.objects.filter(pk=obs.pk).update(implausible=True)


def test_only_one_current_version_per_fhir_id() -> None:
    bundle_import(raw=dumps(load()), channel="command")
    obs = Observation.objects.first()
    assert obs is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.versions.create(
            fhir_id=obs.fhir_id,
            patient=obs.patient,
            code=obs.code,
            effective_at=obs.effective_at,
        )


def test_the_database_refuses_to_change_a_signed_note_whoever_writes() -> None:
    b = bundles.with_note(load(), b"BP 150/95, start ramipril.")
    bundle_import(raw=dumps(b), channel="command")
    note = ClinicalNote.objects.get()
    assert note.is_signed
    with pytest.raises(SignedNoteError):
        note.text = "BP fine."
        note.save()
    with (
        pytest.raises(ProgrammingError, match="Cannot update rows from patients_clinicalnote"),
        transaction.atomic(),
    ):
        ClinicalNote.objects.filter(pk=note.pk).update(text="BP fine.")
    assert ClinicalNote.objects.get().text == "BP 150/95, start ramipril."


def test_import_batches_cannot_be_deleted() -> None:
    batch = bundle_import(raw=dumps(load()), channel="command")
    with (
        pytest.raises(ProgrammingError, match="Cannot delete rows from patients_importbatch"),
        transaction.atomic(),
    ):
        ImportBatch.objects.filter(pk=batch.pk).delete()


def test_the_admin_neither_edits_nor_deletes_observations_nor_deletes_import_batches(
    data_manager: Any,
) -> None:
    batch = bundle_import(raw=dumps(load()), channel="command")
    obs = Observation.objects.filter(value__isnull=False).first()
    assert obs is not None
    client = Client()
    verified_login(client, data_manager)
    change = reverse("admin:patients_observation_change", args=[obs.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="value"' not in page.content
    client.post(change, {"value": "1.0"})
    assert Observation.objects.get(pk=obs.pk).value == obs.value
    for url in (
        reverse("admin:patients_observation_delete", args=[obs.pk]),
        reverse("admin:patients_importbatch_delete", args=[batch.pk]),
    ):
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert Observation.objects.filter(pk=obs.pk).exists()
    assert ImportBatch.objects.filter(pk=batch.pk).exists()
