"""Fixtures for home-device tests: a patient, a token of each kind, and a device's API client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

READINGS_URL = "/api/v1/devices/readings/"


def ago(**delta: float) -> str:
    """An ISO 8601 time with an offset, ``delta`` before now."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


def bp(reading_id: str, systolic: float = 132, diastolic: float = 84, **extra: Any) -> dict:
    return {
        "id": reading_id,
        "type": "blood_pressure",
        "time": ago(hours=1),
        "systolic": systolic,
        "diastolic": diastolic,
        "unit": "mm[Hg]",
        **extra,
    }


@pytest.fixture
def patient(db: None) -> Any:
    from patients.models import Patient

    return Patient.objects.create(
        mrn="DEV-0001", given_name="Ada", family_name="Lovelace", birth_date=dt.date(1950, 3, 1)
    )


@pytest.fixture
def issue(data_manager: Any, patient: Any) -> Callable[..., Any]:
    """Issue a token for ``patient``'s device of ``kind``; returns the IssuedToken."""
    from devices.services import device_token_issue

    def make(kind: str = "bp_cuff", **kwargs: Any) -> Any:
        kwargs.setdefault("patient", patient)
        return device_token_issue(
            kind=kind, label=f"{kind} at home", created_by=data_manager, **kwargs
        )

    return make


@pytest.fixture
def cuff(issue: Callable[..., Any]) -> Any:
    return issue("bp_cuff")


def device(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {secret}")
    return client


def send(secret: str, readings: list[dict]) -> Any:
    return device(secret).post(READINGS_URL, {"readings": readings}, format="json")
