"""Property 14: the "who viewed this record" report of a patient, for data managers in the admin,
is exact: every access to that patient and nothing else, each with actor, time, action and the
emergency-access flag."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from audit import services
from audit.models import AuditEvent
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

_ROW = re.compile(r'<tr class="access">(.*?)</tr>', re.S)
_CELL = re.compile(r"<td>(.*?)</td>", re.S)


def _client(user) -> Client:
    client = Client()
    verified_login(client, user)
    return client


def _report(client: Client, patient_id: int) -> list[list[str]]:
    response = client.get(reverse("admin:audit_auditevent_patient", args=[patient_id]))
    assert response.status_code == 200
    body = response.content.decode()
    return [[html.unescape(c) for c in _CELL.findall(row)] for row in _ROW.findall(body)]


def test_the_report_lists_every_access_to_the_patient_and_nothing_else(
    clinician, other_clinician, data_manager, care_team, imported
) -> None:
    patient, other = imported[0], imported[1]
    mine = _client(clinician)
    mine.get(reverse("patients:twin", args=[patient.pk]))
    mine.get(reverse("patients:twin", args=[patient.pk]))  # twice: listed twice
    mine.get(reverse("patients:notes", args=[patient.pk]))
    mine.get(reverse("patients:twin", args=[other.pk]))  # another patient: not listed
    theirs = _client(other_clinician)
    theirs.get(reverse("patients-api:patient-export", args=[patient.pk]))  # denied
    services.emergency_access_grant(
        user=other_clinician, patient=patient, reason="Seen in the emergency department"
    )
    theirs.get(reverse("patients-api:patient-export", args=[patient.pk]))  # flagged read

    rows = _report(_client(data_manager), patient.pk)
    expected = [
        ("ben.cardio", "Read", "patients-api:patient-export", "yes"),
        (
            "ben.cardio",
            "Emergency access granted",
            "direct",
            "yes: Seen in the emergency department",
        ),
        ("ben.cardio", "Denied", "patients-api:patient-export", "no"),
        ("ana.gp", "Read", "patients:notes", "no"),
        ("ana.gp", "Read", "patients:twin", "no"),
        ("ana.gp", "Read", "patients:twin", "no"),
    ]
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == expected
    stored = AuditEvent.objects.filter(patient_id=patient.pk).order_by("-at", "-pk")
    assert [r[0] for r in rows] == [e.at.strftime("%Y-%m-%d %H:%M:%S") for e in stored]
    assert [r[6] for r in rows] == [e.request_id for e in stored]


def test_the_report_is_for_data_managers_only(clinician, data_manager, care_team, imported) -> None:
    url = reverse("admin:audit_auditevent_patient", args=[imported[0].pk])
    assert _client(clinician).get(url).status_code == 302  # to the admin's login
    assert _client(data_manager).get(url).status_code == 200


def test_the_patient_admin_page_links_to_the_report(data_manager, imported) -> None:
    page = _client(data_manager).get(
        reverse("admin:patients_patient_change", args=[imported[0].pk])
    )
    assert page.status_code == 200
    assert reverse("admin:audit_auditevent_patient", args=[imported[0].pk]) in page.content.decode()
