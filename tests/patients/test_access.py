"""Care-team scoping: patients outside the caller's teams are invisible (404), never listed or counted."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from patients.selectors import patients_visible_to
from tests.conftest import SYNTHEA

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_selector_returns_only_care_team_patients(
    clinician, other_clinician, care_team, imported
) -> None:
    assert set(patients_visible_to(clinician)) == set(imported[:2])
    assert list(patients_visible_to(other_clinician)) == []


def test_the_patient_list_page_shows_only_care_team_patients(
    clinician, care_team, imported
) -> None:
    response = signed_in(clinician).get(reverse("patients:list"))
    assert response.status_code == 200
    body = response.content.decode()
    for p in imported[:2]:
        assert p.mrn in body
    for p in imported[2:]:
        assert p.mrn not in body
    assert "2 patients on your care teams" in body
    assert response["Cache-Control"] == "no-store"


# Every patient-scoped page and API (from the URLconf and the OpenAPI schema) is walked by
# tests/security/test_p01_scoping.py: a 404 outside the care team, found within it.


def test_the_api_list_counts_only_care_team_patients(clinician, care_team, imported) -> None:
    data = signed_in(clinician).get(reverse("patients-api:patient-list")).json()
    assert data["count"] == 2
    assert {p["mrn"] for p in data["results"]} == {p.mrn for p in imported[:2]}


def test_unauthenticated_api_calls_are_refused_and_pages_redirect_to_login(imported) -> None:
    client = Client()
    refused = client.get(reverse("patients-api:patient-list"))
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == 'Bearer realm="api"'
    assert (
        client.get(reverse("patients-api:patient-detail", args=[imported[0].pk])).status_code == 401
    )
    bad_token = client.get(reverse("patients-api:patient-list"), HTTP_AUTHORIZATION="Token nope")
    assert bad_token.status_code == 401
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_observations_api_returns_systolic_readings_in_time_order(
    clinician, care_team, imported
) -> None:
    data = (
        signed_in(clinician)
        .get(
            reverse("patients-api:patient-observations", args=[imported[0].pk]), {"code": "8480-6"}
        )
        .json()
    )
    times = [r["effective_at"] for r in data["results"]]
    assert data["count"] > 0 and times == sorted(times)
    assert all(r["unit"] == "mm[Hg]" for r in data["results"])


def test_only_data_managers_may_import_through_the_api(clinician, data_manager, db) -> None:
    raw = SYNTHEA[0].read_bytes()
    url = reverse("patients-api:bundle-import")
    assert (
        signed_in(clinician).post(url, raw, content_type="application/fhir+json").status_code == 403
    )
    created = signed_in(data_manager).post(url, raw, content_type="application/fhir+json")
    assert created.status_code == 201 and created.json()["status"] == "succeeded"
    again = signed_in(data_manager).post(url, raw, content_type="application/fhir+json")
    assert again.status_code == 200 and again.json()["status"] == "unchanged"


def test_the_api_reports_a_bad_bundle_with_its_entry_and_writes_nothing(data_manager) -> None:
    from patients.models import Patient

    bundle = json.loads(SYNTHEA[0].read_text())
    bundle["entry"][1]["resource"]["status"] = 5
    response = signed_in(data_manager).post(
        reverse("patients-api:bundle-import"), json.dumps(bundle), content_type="application/json"
    )
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["entry"] == 1 and problem["field"] == "status"
    assert Patient.objects.count() == 0


def test_the_openapi_schema_documents_the_patient_endpoints(clinician) -> None:
    response = signed_in(clinician).get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/api/v1/patients/{patient_id}/fhir/" in paths and "/api/v1/fhir/bundles/" in paths


def test_an_unknown_api_address_is_a_json_404(clinician) -> None:
    response = signed_in(clinician).get("/api/v1/patients/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_openapi_schema_documents_pages_and_errors_as_they_are_returned(
    clinician, care_team, imported
) -> None:
    import yaml

    client = signed_in(clinician)
    schema = yaml.safe_load(client.get("/api/schema/").content)
    listing = schema["paths"]["/api/v1/patients/"]["get"]["responses"]
    page = listing["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {
        "count",
        "next",
        "previous",
        "results",
    }
    assert set(client.get(reverse("patients-api:patient-list")).json()) == {
        "count",
        "next",
        "previous",
        "results",
    }
    detail = schema["paths"]["/api/v1/patients/{patient_id}/"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= set(detail)


@pytest.mark.parametrize(
    ("path", "param"),
    [("/api/v1/patients/", "search"), ("/api/v1/patients/{id}/observations/", "code")],
)
def test_a_nul_character_or_an_over_long_query_parameter_is_a_400_naming_it(
    client, clinician, care_team, imported, path, param
) -> None:
    """PostgreSQL refuses NUL in text: the API says which parameter is wrong instead of a 500."""
    client.force_login(clinician)
    url = path.format(id=imported[0].pk)
    for bad in ("abc\x00def", "x" * 101):
        response = client.get(url, {param: bad})
        assert response.status_code == 400, (bad, response.status_code)
        assert param in response.json()
    if param == "search":
        assert client.get(url, {param: imported[0].family_name}).status_code == 200
