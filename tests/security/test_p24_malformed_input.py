"""Property 24: malformed input gets a clear error and writes nothing partial.

A broken bundle, an impossible unit or value, a note in a wrong encoding, a bundle nested far
deeper than any FHIR resource, and an upload over the size limit, through the API and the admin.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from patients.models import ClinicalNote, Condition, Encounter, ImportBatch, Observation, Patient
from tests.patients import bundles
from tests.patients.bundles import bp_index, dumps, load
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

IMPORT_URL = "/api/v1/fhir/bundles/"


def record_counts() -> dict[str, int]:
    return {
        model.__name__: model._default_manager.count()
        for model in (Patient, Encounter, Observation, Condition, ClinicalNote)
    }


@pytest.fixture
def api(data_manager: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(data_manager)
    return client


def post_bundle(api: APIClient, raw: bytes) -> Any:
    return api.generic("POST", IMPORT_URL, raw, content_type="application/fhir+json")


def nested(depth: int) -> bytes:
    return b'{"resourceType": "Bundle", "entry": ' + b"[" * depth + b"]" * depth + b"}"


def broken(kind: str) -> bytes:
    b = load()
    i = bp_index(b)
    if kind == "truncated_json":
        return dumps(b)[:-10]
    if kind == "impossible_unit":
        b["entry"][i]["resource"]["component"][0]["valueQuantity"]["code"] = "kg"
    elif kind == "impossible_value":
        b["entry"][i]["resource"]["component"][1]["valueQuantity"]["value"] = -40
    elif kind == "note_in_latin_1":
        b = bundles.with_note(b, "Gr\xfc\xdfe, Blutdruck erh\xf6ht".encode("latin-1"))
    elif kind == "not_a_bundle":
        b = {"resourceType": "Patient", "id": "x"}
    return dumps(b)


@pytest.mark.parametrize(
    "kind",
    ["truncated_json", "impossible_unit", "impossible_value", "note_in_latin_1", "not_a_bundle"],
)
def test_a_malformed_bundle_gets_a_json_400_naming_the_problem_and_writes_nothing(
    api: APIClient, kind: str
) -> None:
    assert post_bundle(api, load_raw()).status_code == 201
    before = record_counts()
    response = post_bundle(api, broken(kind))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"] == "The bundle was not imported; nothing was written."
    assert body["problems"] and all(p["message"] for p in body["problems"])
    assert record_counts() == before
    failed = ImportBatch.objects.get(status=ImportBatch.Status.FAILED)
    assert failed.errors == body["problems"]


def load_raw() -> bytes:
    return dumps(load())


def test_a_bundle_nested_100000_levels_deep_is_a_json_400_and_a_failed_batch(
    api: APIClient,
) -> None:
    response = post_bundle(api, nested(100_000))
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["problems"][0]["message"]
    failed = ImportBatch.objects.get()
    assert failed.status == ImportBatch.Status.FAILED and failed.channel == "api"
    assert record_counts() == dict.fromkeys(record_counts(), 0)


def test_a_bundle_nested_just_under_the_parsers_limit_is_refused_cleanly(api: APIClient) -> None:
    # deep enough to pass json.loads, too deep for anything recursive after it
    response = post_bundle(api, nested(900))
    assert response.status_code == 400
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


def test_an_oversized_api_upload_is_a_json_413_and_writes_nothing(
    api: APIClient, settings: Any
) -> None:
    raw = load_raw()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(raw) - 1
    response = post_bundle(api, raw)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert str(len(raw) - 1) in response.json()["detail"]
    assert not ImportBatch.objects.exists() and not Patient.objects.exists()


def test_the_admin_upload_refuses_a_file_over_the_limit_and_writes_nothing(
    data_manager: Any, settings: Any
) -> None:
    raw = load_raw()
    settings.TWINPORTAL_MAX_BUNDLE_BYTES = len(raw) - 1
    client = Client()
    verified_login(client, data_manager)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("admin:patients_importbatch_upload"),
        {"bundle": SimpleUploadedFile("big.json", raw, content_type="application/json")},
    )
    assert response.status_code == 200
    assert "larger than" in response.content.decode()
    assert not ImportBatch.objects.exists() and not Patient.objects.exists()


def test_nul_characters_in_a_bundle_are_a_json_400_and_a_failed_batch(api: APIClient) -> None:
    # PostgreSQL's text and jsonb cannot hold NUL: neither the records nor the failure report may
    # trip over one
    unknown = load()
    unknown["entry"].append({"resource": {"resourceType": "X\u0000Y"}})
    in_a_name = load()
    patient = in_a_name["entry"][bundles.first_index(in_a_name, "Patient")]["resource"]
    patient["name"][0]["family"] = "Nul\u0000l"
    for bundle in (unknown, in_a_name):
        response = post_bundle(api, dumps(bundle))
        assert response.status_code == 400, response.content
        assert response.json()["problems"]
    assert record_counts() == dict.fromkeys(record_counts(), 0)
    failed = ImportBatch.objects.filter(status=ImportBatch.Status.FAILED)
    assert failed.count() == 2
    assert "\ufffd" in str(failed.order_by("pk").first().errors)  # type: ignore[union-attr]
