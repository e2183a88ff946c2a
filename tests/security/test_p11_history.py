"""Property 11: every create, update and delete of clinical data records its before and after
values (PostgreSQL triggers into append-only event tables), with the import batch and actor."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import ProgrammingError, transaction

from patients.fhir.importer import bundle_import
from patients.models import Condition, Medication, Observation, Patient
from tests.patients import bundles
from tests.patients.bundles import dumps, load, weight_index

pytestmark = pytest.mark.django_db


def events(model: str, **filters: Any) -> list[Any]:
    event_model = apps.get_model("patients", f"{model}Event")
    return list(
        event_model.objects.filter(**filters).select_related("pgh_context").order_by("pgh_id")
    )


def test_an_imported_change_to_a_patient_records_before_and_after_with_its_batch(
    data_manager: Any,
) -> None:
    b = load()
    first = bundle_import(raw=dumps(b), channel="command")
    patient = Patient.objects.get()
    b["entry"][bundles.first_index(b, "Patient")]["resource"]["name"][0]["family"] = "Renamed"
    second = bundle_import(raw=dumps(b), channel="api", user=data_manager)

    rows = events("Patient", pgh_obj=patient)
    assert [e.pgh_label for e in rows] == ["insert", "before_update", "update"]
    insert, before, after = rows
    assert insert.pgh_context.metadata == {
        "import_batch": first.pk,
        "actor": "system:import",
    }
    assert before.family_name == patient.family_name and after.family_name == "Renamed"
    assert before.pgh_context_id == after.pgh_context_id
    assert after.pgh_context.metadata == {"import_batch": second.pk, "actor": "dana.dm"}


def test_creating_conditions_medications_encounters_and_notes_is_recorded() -> None:
    b = bundles.with_note(load(), b"Seen today.")
    bundle_import(raw=dumps(b), channel="command")
    for model in (Condition, Medication):
        stored = model._default_manager.count()
        assert stored and len(events(model.__name__, pgh_label="insert")) == stored
    assert len(events("Encounter", pgh_label="insert")) > 0
    assert [e.text for e in events("ClinicalNote", pgh_label="insert")] == ["Seen today."]


def test_a_new_observation_version_records_the_old_row_going_out_of_date() -> None:
    b = load()
    bundle_import(raw=dumps(b), channel="command")
    fhir_id = b["entry"][weight_index(b)]["resource"]["id"]
    old = Observation.objects.get(fhir_id=fhir_id)
    b["entry"][weight_index(b)]["resource"]["valueQuantity"]["value"] = 99.5
    bundle_import(raw=dumps(b), channel="command")

    before, after = events("Observation", pgh_obj_id=old.pk)
    assert (before.pgh_label, before.is_current, before.value) == ("before_update", True, old.value)
    assert (after.pgh_label, after.is_current, after.value) == ("update", False, old.value)


def test_a_delete_records_the_row_as_it_was() -> None:
    bundle_import(raw=dumps(load()), channel="command")
    condition = Condition.objects.first()
    assert condition is not None
    pk, code = condition.pk, condition.code
    condition.delete()
    (deleted,) = events("Condition", pgh_label="delete")
    assert (deleted.pgh_obj_id, deleted.code) == (pk, code)


def test_the_history_itself_cannot_be_changed_or_deleted() -> None:
    bundle_import(raw=dumps(load()), channel="command")
    event_model = apps.get_model("patients", "PatientEvent")
    with pytest.raises(ProgrammingError), transaction.atomic():
        event_model.objects.update(family_name="Forged")
    with pytest.raises(ProgrammingError), transaction.atomic():
        event_model.objects.all().delete()
    assert event_model.objects.get().family_name != "Forged"


def test_a_change_made_through_the_api_names_the_user_address_and_request(
    clinician: Any, care_team: Any, imported: list[Any]
) -> None:
    from rest_framework.test import APIClient

    patient = imported[0]
    client = APIClient()
    client.force_login(clinician)
    url = f"/api/v1/patients/{patient.pk}/notes/"
    response = client.post(
        url, {"text": "Draft: BP up."}, format="json", HTTP_X_REQUEST_ID="req-0001-abcd"
    )
    assert response.status_code == 201, response.content
    (created,) = events("ClinicalNote", pgh_label="insert", text="Draft: BP up.")
    assert created.pgh_context.metadata == {
        "user": clinician.pk,
        "url": url,
        "request_id": "req-0001-abcd",
    }


def test_an_import_through_an_api_token_names_the_tokens_user(
    data_manager: Any, api_token: Any
) -> None:
    from django.test import Client

    bundle = load()
    response = Client().post(
        "/api/v1/fhir/bundles/",
        dumps(bundle),
        content_type="application/fhir+json",
        HTTP_AUTHORIZATION=api_token(data_manager, "import"),
        HTTP_X_REQUEST_ID="req-0002-abcd",
    )
    assert response.status_code == 201, response.content
    (created,) = events("Patient", pgh_label="insert")
    assert created.pgh_context.metadata["user"] == data_manager.pk
    assert created.pgh_context.metadata["request_id"] == "req-0002-abcd"
