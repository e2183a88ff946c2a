"""Property 10: every read (and write) of a patient's record, page or API, writes one audit row
with actor, patient id, action, UTC time, IP and request id. The test walks every patient-scoped
address of the URLconf and the OpenAPI schema, so a new one that forgets the audit fails here."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.second_factor import verified_login
from tests.security.patient_routes import objects_of, request, schema_routes, urlconf_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_objects(care_team, imported, clinician) -> dict[str, int]:
    from twins import services

    services.snapshots_compute(patient_ids=[imported[0].pk], trigger="test")
    return objects_of(imported[0], clinician)


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(clinician)
    return client


def _rows(response) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(request_id=response["X-Request-ID"]))


def test_every_patient_scoped_address_writes_one_row_for_the_patient(
    signed_in, clinician, member_objects
) -> None:
    routes = urlconf_routes() + schema_routes()
    assert len(routes) >= 20  # the walk found the project's addresses, not nothing
    for route in routes:
        before = timezone.now()
        response = request(signed_in, route, route.fill(member_objects))
        assert response.status_code != 404, route
        rows = _rows(response)
        assert len(rows) == 1, (route, rows)
        row = rows[0]
        expected = "read" if response.request["REQUEST_METHOD"] == "GET" else "write"
        assert (row.actor_id, row.actor_name) == (clinician.pk, clinician.username), route
        assert (row.patient_id, row.action, row.break_glass) == (
            member_objects["patient_id"],
            expected,
            False,
        ), route
        assert row.ip == "10.1.2.3" and row.resource, route
        assert before <= row.at <= timezone.now() and row.at.utcoffset() == dt.timedelta(0)


def test_the_fhir_export_is_audited_with_the_request_id_the_client_sent(
    signed_in, imported, care_team
) -> None:
    response = signed_in.get(
        reverse("patients-api:patient-export", args=[imported[0].pk]),
        HTTP_X_REQUEST_ID="export-req-0001",
    )
    assert response.status_code == 200
    [row] = AuditEvent.objects.filter(request_id="export-req-0001")
    assert row.patient_id == imported[0].pk and row.resource == "patients-api:patient-export"


@pytest.mark.parametrize("name", ["patients:list", "patients-api:patient-list"])
def test_a_list_records_one_row_per_patient_shown_in_one_insert(
    name, signed_in, care_team, imported
) -> None:
    with CaptureQueriesContext(connection) as ctx:
        response = signed_in.get(reverse(name))
    assert response.status_code == 200
    rows = _rows(response)
    assert sorted(r.patient_id for r in rows) == sorted(p.pk for p in imported[:2])
    assert {r.action for r in rows} == {"read"}
    inserts = [q for q in ctx.captured_queries if 'INSERT INTO "audit_auditevent"' in q["sql"]]
    assert len(inserts) == 1


@pytest.mark.parametrize("name", ["patients:alerts", "twins-api:alerts"])
def test_an_alert_list_records_the_patients_whose_alerts_it_shows(
    name, signed_in, member_objects
) -> None:
    response = signed_in.get(reverse(name))
    assert response.status_code == 200
    assert [r.patient_id for r in _rows(response)] == [member_objects["patient_id"]]


def test_a_request_that_touches_no_patient_writes_no_row(signed_in, care_team) -> None:
    response = signed_in.get(reverse("audit:emergency-access"))
    assert response.status_code == 200
    assert _rows(response) == []


def test_background_work_records_a_named_system_actor(imported) -> None:
    from patients.services import note_summary_refresh
    from twins import services

    services.snapshots_compute(patient_ids=[p.pk for p in imported], trigger="test")
    rows = AuditEvent.objects.filter(actor_name="system:twin-recompute")
    assert sorted(r.patient_id for r in rows) == sorted(p.pk for p in imported)
    assert {(r.actor_id, r.action, r.resource) for r in rows} == {
        (None, "read", "twins.services.snapshots_compute")
    }
    note_summary_refresh(patient_id=imported[0].pk)
    [row] = AuditEvent.objects.filter(actor_name="system:note-reader")
    assert row.patient_id == imported[0].pk


def test_a_home_device_writing_readings_is_the_actor_of_its_write(data_manager, imported) -> None:
    from devices.services import device_token_issue

    issued = device_token_issue(
        kind="bp_cuff", label="cuff at home", created_by=data_manager, patient=imported[0]
    )
    reading = {
        "id": "cuff-0001",
        "type": "blood_pressure",
        "time": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "systolic": 131,
        "diastolic": 82,
        "unit": "mm[Hg]",
    }
    response = Client().post(
        reverse("devices-api:readings"),
        {"readings": [reading]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {issued.secret}",
    )
    assert response.status_code == 201
    [row] = _rows(response)
    assert (row.actor_id, row.patient_id, row.action) == (None, imported[0].pk, "write")
    assert row.actor_name == f"device:{issued.token.prefix}"


def test_a_data_manager_opening_a_record_in_the_admin_is_recorded(data_manager, imported) -> None:
    from patients.models import Observation

    client = Client()
    verified_login(client, data_manager)
    patient = imported[1]
    observation = Observation.objects.filter(patient=patient).first()
    assert observation is not None
    for url in (
        reverse("admin:patients_patient_change", args=[patient.pk]),
        reverse("admin:patients_observation_change", args=[observation.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        [row] = _rows(response)
        assert (row.actor_id, row.patient_id, row.action) == (data_manager.pk, patient.pk, "read")
    listing = client.get(reverse("admin:patients_patient_changelist"))
    assert listing.status_code == 200 and _rows(listing) == []


def test_a_fhir_export_from_the_admin_or_the_command_is_recorded(
    data_manager, imported, tmp_path
) -> None:
    from django.core.management import call_command

    client = Client()
    verified_login(client, data_manager)
    chosen = imported[:2]
    response = client.post(
        reverse("admin:patients_patient_changelist"),
        {"action": "export_fhir", "_selected_action": [p.pk for p in chosen]},
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    rows = _rows(response)
    assert sorted(r.patient_id for r in rows) == sorted(p.pk for p in chosen)
    assert {(r.actor_id, r.action) for r in rows} == {(data_manager.pk, "read")}

    call_command("export_fhir", mrn=imported[3].mrn, out=str(tmp_path / "p.json"))
    [row] = AuditEvent.objects.filter(actor_name="system:export-fhir-command")
    assert (row.patient_id, row.action, row.resource) == (imported[3].pk, "read", "export_fhir")
