"""Property 12 (denied patient accesses): every 404 of care-team scoping writes an audit row
with the actor, the patient asked for and the request id, on every patient-scoped address."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.security.patient_routes import objects_of, request, schema_routes, urlconf_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider_objects(care_team, imported, clinician) -> dict[str, int]:
    from twins import services

    services.snapshots_compute(patient_ids=[imported[2].pk], trigger="test")
    return objects_of(imported[2], clinician)


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


def test_every_denied_address_records_actor_patient_and_request_id(
    signed_in, clinician, outsider_objects
) -> None:
    for route in urlconf_routes() + schema_routes():
        response = request(signed_in, route, route.fill(outsider_objects))
        assert response.status_code == 404, route
        rows = list(AuditEvent.objects.filter(request_id=response["X-Request-ID"]))
        assert [(r.action, r.patient_id, r.actor_id) for r in rows] == [
            ("denied", outsider_objects["patient_id"], clinician.pk)
        ], route
        assert rows[0].actor_name == clinician.username and rows[0].resource


def test_an_unknown_patient_id_is_recorded_as_denied_too(signed_in, clinician, db) -> None:
    response = signed_in.get(
        reverse("patients-api:patient-detail", args=[987654]), HTTP_X_REQUEST_ID="probe-000001"
    )
    assert response.status_code == 404
    row = AuditEvent.objects.get(request_id="probe-000001")
    assert (row.action, row.patient_id, row.actor_id) == ("denied", 987654, clinician.pk)


def test_an_id_no_key_can_hold_is_a_recorded_404_not_a_500(signed_in, clinician, db) -> None:
    for path in ("patients-api:patient-detail", "patients:twin"):
        response = signed_in.get(reverse(path, args=[2**64 + 1]), HTTP_X_REQUEST_ID="probe-000002")
        assert response.status_code == 404, path
        row = AuditEvent.objects.filter(request_id="probe-000002").latest("pk")
        assert (row.action, row.patient_id, row.actor_id) == ("denied", None, clinician.pk)
        assert str(2**64 + 1) in row.detail


def test_a_permitted_read_is_not_recorded_as_denied(signed_in, care_team, imported) -> None:
    response = signed_in.get(reverse("patients:twin", args=[imported[0].pk]))
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="denied").exists()
