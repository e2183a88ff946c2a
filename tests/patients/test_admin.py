"""The admin site for data managers: reachable by them only, fast list pages, bundle upload."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import ImportBatch, Patient
from tests.conftest import SYNTHEA
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    verified_login(client, user)
    return client


def test_clinicians_cannot_reach_the_admin(clinician) -> None:
    response = signed_in(clinician).get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "model",
    [
        "patient",
        "observation",
        "condition",
        "medication",
        "encounter",
        "clinicalnote",
        "careteam",
        "importbatch",
    ],
)
def test_data_manager_list_pages_load_with_a_constant_number_of_queries(
    model, data_manager, imported
) -> None:
    client = signed_in(data_manager)
    url = reverse(f"admin:patients_{model}_changelist")
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    # Hundreds of rows on the page, but no query per row.
    assert len(ctx.captured_queries) < 15, [q["sql"][:120] for q in ctx.captured_queries]


def test_the_admin_searches_observations_by_mrn(data_manager, imported) -> None:
    patient = imported[0]
    response = signed_in(data_manager).get(
        reverse("admin:patients_observation_changelist"), {"q": patient.mrn}
    )
    assert response.status_code == 200
    assert patient.family_name in response.content.decode()


def test_a_data_manager_imports_a_bundle_by_upload(data_manager) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = signed_in(data_manager)
    upload = SimpleUploadedFile(
        SYNTHEA[0].name, SYNTHEA[0].read_bytes(), content_type="application/json"
    )
    response = client.post(
        reverse("admin:patients_importbatch_upload"), {"bundle": upload}, follow=True
    )
    assert response.status_code == 200
    assert Patient.objects.count() == 1
    assert ImportBatch.objects.get().status == "succeeded"
    assert "created" in response.content.decode()


def test_a_bad_upload_lists_its_problems_and_imports_nothing(data_manager) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "broken.json", b'{"resourceType": "Bundle", "entry": [}', content_type="application/json"
    )
    response = signed_in(data_manager).post(
        reverse("admin:patients_importbatch_upload"), {"bundle": upload}, follow=True
    )
    body = response.content.decode()
    assert "invalid JSON at line 1" in body and "Nothing was imported" in body
    assert Patient.objects.count() == 0
    assert ImportBatch.objects.get().status == "failed"


def test_the_export_action_returns_a_fhir_bundle(data_manager, imported) -> None:
    response = signed_in(data_manager).post(
        reverse("admin:patients_patient_changelist"),
        {"action": "export_fhir", "_selected_action": [imported[0].pk]},
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    assert response.json()["resourceType"] == "Bundle"


def test_the_observation_list_neither_scans_for_filter_values_nor_searches_case_insensitively(
    data_manager, imported
) -> None:
    client = signed_in(data_manager)
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("admin:patients_observation_changelist"), {"q": imported[1].mrn})
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert "DISTINCT" not in sql
    assert "UPPER(" not in sql
    assert f"\"mrn\" = '{imported[1].mrn}'" in sql


def test_admin_pages_carry_the_site_icon_and_title(data_manager) -> None:
    """The admin links the site's icon (a browser would otherwise ask for a missing
    /favicon.ico) and keeps its own header."""
    client = signed_in(data_manager)
    html = client.get(reverse("admin:index")).content.decode()
    assert '<link rel="icon" href="/static/img/favicon' in html
    assert "TwinPortal data management" in html
    assert (
        client.get(reverse("admin:patients_patient_changelist"))
        .content.decode()
        .count('rel="icon"')
        == 1
    )
