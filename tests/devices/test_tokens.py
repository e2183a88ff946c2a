"""Device tokens: stored hashed, refused when revoked or expired, good for the ingestion endpoint only."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from devices.models import DeviceToken
from devices.services import device_tokens_revoke
from patients.models import Observation
from tests.devices.conftest import READINGS_URL, bp, device, send

pytestmark = pytest.mark.django_db


def test_it_stores_only_the_hash_of_the_secret(cuff) -> None:
    secret = cuff.secret
    assert secret.startswith("tpd_") and len(secret) == 56
    row = DeviceToken.objects.get()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert row.prefix == secret[4:12] and row.prefix not in secret[13:]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM devices_devicetoken t")
        (stored,) = cursor.fetchone()
    assert secret not in stored and secret[13:] not in stored


def test_an_active_token_sends_readings_and_its_use_is_recorded(cuff) -> None:
    assert DeviceToken.objects.get().last_used_at is None

    assert send(cuff.secret, [bp("r1")]).status_code == 201

    assert DeviceToken.objects.get().last_used_at is not None


def test_a_revoked_token_is_refused_with_401_and_a_clear_message(cuff, data_manager) -> None:
    device_tokens_revoke(token_ids=[cuff.token.pk], revoked_by=data_manager)

    response = send(cuff.secret, [bp("r1")])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "This device token has been revoked; ask the care team for a new one."
    }
    assert response["WWW-Authenticate"].startswith("Device")
    assert not Observation.objects.exists()


def test_an_expired_token_is_refused_with_401(issue) -> None:
    issued = issue("bp_cuff", expires_at=timezone.now() + dt.timedelta(days=1))
    DeviceToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = send(issued.secret, [bp("r1")])

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert not Observation.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Device tpd_" + "x" * 52,
        # a well-formed token nobody issued (fixed, so every test process collects the same ids)
        "Device tpd_abcdefgh_" + "Zq3" * 14 + "Zq",
        "Device",
        "Device two parts",
    ],
    ids=["wrong prefix shape", "unknown token", "no secret", "two parts"],
)
def test_an_unknown_or_malformed_token_is_refused_with_401(cuff, header) -> None:
    response = APIClient().post(
        READINGS_URL, {"readings": [bp("r1")]}, format="json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401
    assert response.json()["detail"]
    assert not Observation.objects.exists()


def test_a_request_without_a_token_is_challenged_for_one(db) -> None:
    response = APIClient().post(READINGS_URL, {"readings": []}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Device realm="device readings"'


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/patients/"),
        ("get", "/api/v1/patients/{patient_id}/"),
        ("get", "/api/v1/patients/{patient_id}/observations/?code=8480-6"),
        ("get", "/api/v1/patients/{patient_id}/fhir/"),
        ("post", "/api/v1/fhir/bundles/"),
        ("get", "/api/v1/patients/{patient_id}/twin/"),
        ("get", "/api/v1/alerts/"),
    ],
)
def test_the_device_token_is_refused_on_every_other_endpoint(cuff, patient, method, url) -> None:
    response = getattr(device(cuff.secret), method)(url.format(patient_id=patient.pk))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("scope", ["read", "import"])
def test_a_users_api_token_cannot_send_readings(data_manager, api_token, scope) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=api_token(data_manager, scope))

    response = client.post(READINGS_URL, {"readings": [bp("r1")]}, format="json")

    assert response.status_code == 401


def test_a_signed_in_user_cannot_send_readings(data_manager) -> None:
    client = Client()
    client.force_login(data_manager)

    response = client.post(READINGS_URL, {"readings": [bp("r1")]}, content_type="application/json")

    assert response.status_code == 401
    assert not Observation.objects.exists()


def test_the_openapi_schema_documents_the_endpoint_and_the_device_scheme(data_manager) -> None:
    client = Client()
    client.force_login(data_manager)

    schema = client.get("/api/schema/", {"format": "json"}).json()

    scheme = schema["components"]["securitySchemes"]["deviceToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    operation = schema["paths"]["/api/v1/devices/readings/"]["post"]
    assert operation["security"] == [{"deviceToken": []}]
    assert {"200", "201", "400", "401"} <= set(operation["responses"])
    reading = schema["components"]["schemas"]["DeviceReadingRequest"]
    assert reading["discriminator"]["propertyName"] == "type"
    assert set(reading["discriminator"]["mapping"]) == {"blood_pressure", "weight", "glucose"}
