"""Property 6: break-the-glass. A clinician outside the care team may get access with a mandatory
reason for a fixed window (60 minutes by default); every read in it is flagged in the audit log;
the privacy officer's notification is recorded and e-mailed; after the window the patient is a
404 again."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent, EmergencyAccess, PrivacyOfficerNotification

pytestmark = pytest.mark.django_db

REASON = "Admitted unconscious to the emergency department, on my ward tonight"


@pytest.fixture
def officer(settings) -> str:
    settings.TWINPORTAL_AUDIT = {**settings.TWINPORTAL_AUDIT, "privacy_officer_email": "po@h.org"}
    return "po@h.org"


@pytest.fixture
def outsider(care_team, imported):
    return imported[2]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_patient_not_found_page_leads_to_the_request(clinician, outsider) -> None:
    response = _client(clinician).get(reverse("patients:twin", args=[outsider.pk]))
    assert response.status_code == 404
    link = reverse("audit:emergency-access") + f"?patient={outsider.pk}"
    assert link in response.content.decode()
    form = _client(clinician).get(link).content.decode()
    assert f'value="{outsider.pk}"' in form and 'name="reason"' in form


def test_without_a_reason_nothing_is_granted(clinician, outsider, officer) -> None:
    client = _client(clinician)
    for reason in ("", "   ", "urgent"):
        response = client.post(
            reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": reason}
        )
        assert response.status_code == 200
    assert not EmergencyAccess.objects.exists() and mail.outbox == []
    assert client.get(reverse("patients:twin", args=[outsider.pk])).status_code == 404


def test_a_reason_opens_the_record_for_the_window_with_every_read_flagged(
    clinician, outsider, officer
) -> None:
    client = _client(clinician)
    response = client.post(
        reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": REASON}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:twin", args=[outsider.pk])
    grant = EmergencyAccess.objects.get()
    assert (grant.user, grant.patient, grant.reason) == (clinician, outsider, REASON)
    assert grant.expires_at - grant.granted_at == dt.timedelta(minutes=60)

    reads = [
        client.get(reverse("patients:twin", args=[outsider.pk])),
        client.get(reverse("patients:notes", args=[outsider.pk])),
        client.get(reverse("patients-api:patient-export", args=[outsider.pk])),
    ]
    assert [r.status_code for r in reads] == [200, 200, 200]
    for r in reads:
        row = AuditEvent.objects.get(request_id=r["X-Request-ID"])
        assert (row.patient_id, row.action, row.break_glass) == (outsider.pk, "read", True)
    granted = AuditEvent.objects.get(action="emergency_access")
    assert granted.break_glass and granted.detail == REASON and granted.actor == clinician

    # the patient stays out of the clinician's lists (property 2): access is to this record only
    listed = client.get(reverse("patients-api:patient-list")).json()
    assert outsider.pk not in [p["id"] for p in listed["results"]]


def test_the_privacy_officer_is_notified_by_a_recorded_email(
    clinician, outsider, officer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _client(clinician).post(
            reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": REASON}
        )
    note = PrivacyOfficerNotification.objects.get()
    assert note.recipient == "po@h.org" and note.sent_at is not None and note.error == ""
    [email] = mail.outbox
    assert email.to == ["po@h.org"] and email.subject == note.subject
    assert clinician.username in email.body and str(outsider.pk) in email.body
    # ids only in the e-mail: no name, MRN or reason
    for secret in (outsider.family_name, outsider.mrn, REASON):
        assert secret not in email.body


def test_after_the_window_the_patient_is_a_404_again(clinician, outsider, officer) -> None:
    _client(clinician).post(
        reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": REASON}
    )
    grant = EmergencyAccess.objects.get()
    twin = reverse("patients:twin", args=[outsider.pk])
    with time_machine.travel(grant.expires_at - dt.timedelta(minutes=1), tick=False):
        assert _client(clinician).get(twin).status_code == 200
    with time_machine.travel(grant.expires_at + dt.timedelta(seconds=1), tick=False):
        client = _client(clinician)
        response = client.get(twin)
        assert response.status_code == 404
        api = client.get(reverse("patients-api:patient-detail", args=[outsider.pk]))
        assert api.status_code == 404
    denied = AuditEvent.objects.get(request_id=response["X-Request-ID"])
    assert (denied.action, denied.break_glass) == ("denied", False)


def test_the_window_is_a_setting(settings, clinician, outsider, officer) -> None:
    settings.TWINPORTAL_AUDIT = {**settings.TWINPORTAL_AUDIT, "break_glass_minutes": 15}
    _client(clinician).post(
        reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": REASON}
    )
    grant = EmergencyAccess.objects.get()
    assert grant.expires_at - grant.granted_at == dt.timedelta(minutes=15)


def test_a_clinician_may_name_the_patient_by_mrn_from_the_search(
    clinician, outsider, officer
) -> None:
    response = _client(clinician).post(
        reverse("audit:emergency-access"), {"mrn": outsider.mrn, "reason": REASON}
    )
    assert response.status_code == 302
    assert EmergencyAccess.objects.get().patient == outsider


def test_the_api_grants_access_with_a_reason(clinician, outsider, officer) -> None:
    client = _client(clinician)
    url = reverse("audit-api:emergency-access")
    refused = client.post(url, {"patient": outsider.pk}, content_type="application/json")
    assert refused.status_code == 400
    created = client.post(
        url, {"patient": outsider.pk, "reason": REASON}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["patient"] == outsider.pk
    export = client.get(reverse("patients-api:patient-export", args=[outsider.pk]))
    assert export.status_code == 200
    assert AuditEvent.objects.get(request_id=export["X-Request-ID"]).break_glass
    missing = client.post(
        url, {"patient": 987654, "reason": REASON}, content_type="application/json"
    )
    assert missing.status_code == 404


def test_only_clinicians_outside_the_care_team_may_break_the_glass(
    clinician, data_manager, care_team, imported, officer
) -> None:
    url = reverse("audit-api:emergency-access")
    own = _client(clinician).post(
        url, {"patient": imported[0].pk, "reason": REASON}, content_type="application/json"
    )
    assert own.status_code == 400 and "already" in own.json()["detail"]
    manager = _client(data_manager).post(
        url, {"patient": imported[2].pk, "reason": REASON}, content_type="application/json"
    )
    assert manager.status_code == 400
    assert not EmergencyAccess.objects.exists() and mail.outbox == []


def test_a_failed_email_is_recorded_and_access_stands(
    settings, clinician, outsider, officer, django_capture_on_commit_callbacks
) -> None:
    # nothing listens on the discard port: the SMTP connection is refused
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    with django_capture_on_commit_callbacks(execute=True):
        _client(clinician).post(
            reverse("audit:emergency-access"), {"patient": outsider.pk, "reason": REASON}
        )
    note = PrivacyOfficerNotification.objects.get()
    assert note.sent_at is None and note.error
    assert _client(clinician).get(reverse("patients:twin", args=[outsider.pk])).status_code == 200
