"""Property 4: authorization is enforced on the server. A patient id tampered into a posted form
(what-if, note, alert acknowledgement, search) or the body of an API call, and the replayed
address of another patient's page or object, are refused or ignored; nothing is written for the
other patient."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.patient_routes import objects_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(care_team, imported, clinician) -> dict[str, dict[str, int]]:
    from twins import services

    member, outsider = imported[0], imported[2]
    services.snapshots_compute(patient_ids=[member.pk, outsider.pk], trigger="test")
    return {"member": objects_of(member, clinician), "outsider": objects_of(outsider, clinician)}


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


def _plan(today: dt.date) -> dict[str, str]:
    return {
        "plan0-name": "ACE inhibitor",
        "plan0-item0_intervention": "ace_inhibitor",
        "plan0-item0_dose": "1",
        "plan0-item0_start": today.isoformat(),
    }


def test_a_what_if_posted_for_the_team_with_another_patient_id_is_for_the_team(
    signed_in, objects
) -> None:
    from twins.models import WhatIfRun

    member, outsider = objects["member"]["patient_id"], objects["outsider"]["patient_id"]
    before = WhatIfRun.objects.filter(patient_id=outsider).count()
    data = {**_plan(dt.date.today()), "patient_id": outsider, "patient": outsider}
    response = signed_in.post(reverse("patients:whatif-new", args=[member]), data)
    assert response.status_code == 302
    run = WhatIfRun.objects.latest("pk")
    assert run.patient_id == member
    assert WhatIfRun.objects.filter(patient_id=outsider).count() == before


def test_a_what_if_posted_to_another_patients_address_is_a_404(signed_in, objects) -> None:
    from twins.models import WhatIfRun

    outsider = objects["outsider"]["patient_id"]
    before = WhatIfRun.objects.count()
    response = signed_in.post(
        reverse("patients:whatif-new", args=[outsider]), _plan(dt.date.today())
    )
    assert response.status_code == 404
    assert WhatIfRun.objects.count() == before


def test_a_note_posted_with_another_patient_id_lands_on_the_address_patient(
    signed_in, objects
) -> None:
    from patients.models import ClinicalNote

    member, outsider = objects["member"]["patient_id"], objects["outsider"]["patient_id"]
    before = ClinicalNote.objects.filter(patient_id=outsider).count()
    data = {"title": "t", "text": "Seen.", "patient_id": outsider, "patient": outsider}
    assert signed_in.post(reverse("patients:note-new", args=[member]), data).status_code == 302
    assert signed_in.post(reverse("patients:note-new", args=[outsider]), data).status_code == 404
    assert ClinicalNote.objects.filter(patient_id=outsider).count() == before
    api = signed_in.post(
        f"/api/v1/patients/{member}/notes/",
        {"text": "Seen.", "patient": outsider, "patient_id": outsider},
        content_type="application/json",
    )
    assert api.status_code == 201
    assert ClinicalNote.objects.get(pk=api.json()["id"]).patient_id == member
    assert ClinicalNote.objects.filter(patient_id=outsider).count() == before


def test_another_patients_note_under_a_team_patients_address_is_a_404(signed_in, objects) -> None:
    member, note = objects["member"]["patient_id"], objects["outsider"]["note_id"]
    for name in ("patients:note", "patients:note-amend"):
        url = reverse(name, args=[member, note])
        assert signed_in.get(url).status_code == 404
        assert signed_in.post(url, {"text": "changed"}).status_code == 404


def test_acknowledging_another_patients_alert_is_a_404_and_changes_nothing(
    signed_in, objects
) -> None:
    from twins.models import TwinAlert

    alert_id = objects["outsider"]["alert_id"]
    data = {"reason": "Seen", "patient_id": objects["member"]["patient_id"], "next": "patient"}
    assert (
        signed_in.post(reverse("patients:alert-acknowledge", args=[alert_id]), data).status_code
        == 404
    )
    api = signed_in.post(
        f"/api/v1/alerts/{alert_id}/acknowledge/",
        {"reason": "Seen"},
        content_type="application/json",
    )
    assert api.status_code == 404
    assert TwinAlert.objects.get(pk=alert_id).acknowledged_at is None


def test_a_search_with_a_tampered_patient_id_shows_only_the_team(signed_in, objects) -> None:
    from patients.models import Patient

    outsider = Patient.objects.get(pk=objects["outsider"]["patient_id"])
    html = signed_in.post(
        reverse("patients:list"),
        {"search": "", "patient_id": outsider.pk, "patient": outsider.pk},
        follow=True,
    ).content.decode()
    assert outsider.mrn not in html
    assert f"/patients/{outsider.pk}/" not in html


def test_a_replayed_address_of_another_patient_is_a_404(signed_in, objects) -> None:
    o = objects["outsider"]
    for url in (
        reverse("patients:twin", args=[o["patient_id"]]),
        reverse("patients:notes", args=[o["patient_id"]]),
        reverse("patients:whatif", args=[o["run_id"]]),
        reverse("patients:whatif-status", args=[o["run_id"]]),
        f"/api/v1/patients/{o['patient_id']}/fhir/",
        f"/api/v1/whatif/{o['run_id']}/",
    ):
        assert signed_in.get(url).status_code == 404, url


def test_an_address_saved_while_on_the_team_is_a_404_after_leaving_it(
    signed_in, objects, care_team, clinician
) -> None:
    member = objects["member"]
    urls = [
        reverse("patients:twin", args=[member["patient_id"]]),
        reverse("patients:whatif", args=[member["run_id"]]),
        f"/api/v1/patients/{member['patient_id']}/",
    ]
    assert all(signed_in.get(url).status_code == 200 for url in urls)
    care_team.members.remove(clinician)
    for url in urls:
        assert signed_in.get(url).status_code == 404, url
