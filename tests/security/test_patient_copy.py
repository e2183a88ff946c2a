"""The patient's own copy: the whole record as a FHIR bundle and a printable summary, handed over
by a data manager from the admin and recorded in the access log."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from patients.fhir.exporter import patient_bundle
from patients.models import ClinicalNote
from patients.patient_copy import (
    AUDIT_RESOURCE,
    BUNDLE_NAME,
    SUMMARY_NAME,
    patient_copy_issue,
)
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

NOTE = "Blood pressure <b>better</b> on ramipril; recheck in 3 months."


def signed_in(user) -> Client:
    client = Client()
    verified_login(client, user)
    return client


@pytest.fixture
def patient(imported):
    patient = imported[0]
    ClinicalNote.objects.create(
        patient=patient,
        author_name="Dr. Iris Quayle",
        author_role="general practitioner",
        written_at=dt.datetime(2024, 5, 2, 10, 15, tzinfo=dt.UTC),
        title="Review",
        text=NOTE,
        status=ClinicalNote.Status.SIGNED,
        signed_at=dt.datetime(2024, 5, 2, 10, 30, tzinfo=dt.UTC),
    )
    return patient


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_copy_holds_the_whole_record_and_a_readable_summary(patient, data_manager) -> None:
    copy = patient_copy_issue(patient=patient, issued_by=data_manager)
    files = unzip(copy.zip_bytes())
    assert sorted(files) == sorted([BUNDLE_NAME, SUMMARY_NAME])

    bundle = json.loads(files[BUNDLE_NAME])
    assert bundle == json.loads(json.dumps(patient_bundle(patient)))
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Observation", "Condition", "MedicationRequest"} <= kinds
    assert "DocumentReference" in kinds

    html = files[SUMMARY_NAME].decode()
    condition = patient.conditions.first()
    medication = patient.medications.first()
    for expected in (
        patient.family_name,
        patient.mrn,
        condition.label,
        medication.name,
        "Dr. Iris Quayle",
        "@media print",
    ):
        assert expected in html
    # the note's text is shown as text, never as markup
    assert "&lt;b&gt;better&lt;/b&gt;" in html and "<b>better</b>" not in html
    # every reading is listed: the latest weight and the oldest
    weights = patient.observations.filter(code="29463-7").order_by("effective_at")
    assert f"{weights.last().value:g} kg" in html and f"{weights.first().value:g} kg" in html


def test_each_copy_is_recorded_in_the_access_log(patient, data_manager) -> None:
    at = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    patient_copy_issue(
        patient=patient, issued_by=data_manager, ip="10.0.0.7", request_id="req-1", now=at
    )
    event = AuditEvent.objects.get(resource=AUDIT_RESOURCE)
    assert (event.actor_id, event.actor_name, event.patient_id, event.at) == (
        data_manager.pk,
        data_manager.username,
        patient.pk,
        at,
    )
    assert (event.ip, event.request_id, event.action) == ("10.0.0.7", "req-1", "read")


def test_a_data_manager_hands_over_the_copy_from_the_admin(patient, data_manager) -> None:
    response = signed_in(data_manager).post(
        reverse("admin:patients_patient_changelist"),
        {"action": "patient_copy", "_selected_action": [patient.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert patient.mrn not in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    assert set(unzip(response.content)) == {BUNDLE_NAME, SUMMARY_NAME}
    event = AuditEvent.objects.get(resource=AUDIT_RESOURCE)
    assert (event.actor_id, event.patient_id) == (data_manager.pk, patient.pk)


def test_a_copy_is_for_one_patient_at_a_time(imported, data_manager) -> None:
    response = signed_in(data_manager).post(
        reverse("admin:patients_patient_changelist"),
        {"action": "patient_copy", "_selected_action": [p.pk for p in imported[:2]]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Select exactly one patient" in response.content.decode()
    assert not AuditEvent.objects.filter(resource=AUDIT_RESOURCE).exists()


def test_clinicians_cannot_hand_out_copies(patient, clinician) -> None:
    response = signed_in(clinician).post(
        reverse("admin:patients_patient_changelist"),
        {"action": "patient_copy", "_selected_action": [patient.pk]},
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not AuditEvent.objects.filter(resource=AUDIT_RESOURCE).exists()
