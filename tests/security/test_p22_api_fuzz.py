"""Property 22: schemathesis against the OpenAPI schema, as a clinician signed in (session), a
clinician's read-only API token, a data manager's import token and a home device's token: no 5xx
and no response that breaks the schema (status code, content type, headers, body);
unauthenticated calls get 401.

Eight examples per operation keep this in the suite (about a minute); ``make fuzz`` runs the same
checks with 200 (``TWINPORTAL_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXAMPLES = int(os.environ.get("TWINPORTAL_FUZZ_EXAMPLES", "8"))


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    # as Django's test client does: the test's transaction (its connection) outlives each request
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(
    clinician: Any, data_manager: Any, care_team: Any, imported: list[Any], api_token: Any
) -> dict[str, dict[str, str]]:
    """The headers of each kind of caller: the one place credentials are made."""
    from django.test import Client

    from devices.services import device_token_issue

    device = device_token_issue(
        patient=imported[0], kind="bp_cuff", label="fuzz", created_by=data_manager
    )
    browser = Client()
    browser.force_login(clinician)
    csrf = "c" * 32  # the cookie and the header agree, as the pages' JavaScript sends them
    return {
        "clinician": {"Authorization": api_token(clinician, "read")},
        "clinician signed in": {
            "Cookie": f"sessionid={browser.cookies['sessionid'].value}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
        },
        "data manager": {"Authorization": api_token(data_manager, "import")},
        "device": {"Authorization": f"Device {device.secret}"},
    }


def fuzz(operation: Any, credentials: dict[str, dict[str, str]]) -> None:
    """Generated requests to one operation, each sent once per caller, checked against the schema."""
    # The import endpoint's schema gives a bundle's shape; full FHIR R4 validity is checked on
    # import, and a shape-valid but unusable bundle is a documented 400 naming its problems.
    excluded = [positive_data_acceptance] if operation.path == "/api/v1/fhir/bundles/" else []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call_as_everyone(case: Any) -> None:
        for headers in credentials.values():
            case.call_and_validate(headers=headers, excluded_checks=excluded)

    call_as_everyone()


def test_no_server_error_or_schema_violation_for_any_caller(
    api_schema: Any, credentials: dict[str, dict[str, str]]
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    failures: dict[str, str] = {}
    for operation in operations:
        try:
            fuzz(operation, credentials)
        except (Exception, BaseExceptionGroup) as exc:  # every operation tried, all reported
            failures[operation.label] = str(exc)
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())


def test_unauthenticated_calls_are_refused(api_schema: Any) -> None:
    from django.test import Client

    client = Client()
    refused = {
        path: client.generic(method.upper(), re.sub(r"\{[^}]+\}", "1", path)).status_code
        for path, methods in api_schema.raw_schema["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert refused and set(refused.values()) == {401}, refused


def test_successful_answers_match_the_schema_too(
    api_schema: Any, credentials: dict[str, dict[str, str]], imported: list[Any]
) -> None:
    # random ids rarely hit a care-team patient and random bundles are never valid FHIR, so the
    # 2xx answers are also checked on purpose: an import (201), its repeat (200) and reads
    from tests.patients.bundles import load, weight_index

    bundle = load()  # already imported by the fixture: 200
    changed = json.loads(json.dumps(bundle))
    changed["entry"][weight_index(changed)]["resource"]["valueQuantity"]["value"] = 88.8
    for body, expected in ((bundle, 200), (changed, 201)):
        import_case = api_schema["/api/v1/fhir/bundles/"]["POST"].Case(
            body=body, media_type="application/fhir+json"
        )
        response = import_case.call_and_validate(headers=credentials["data manager"])
        assert response.status_code == expected
    patient = imported[0].pk
    for path in (
        "/api/v1/patients/",
        "/api/v1/patients/{patient_id}/",
        "/api/v1/patients/{patient_id}/observations/",
        "/api/v1/patients/{patient_id}/notes/",
    ):
        case = api_schema[path]["GET"].Case(
            path_parameters={"patient_id": patient} if "{" in path else {},
            query={"code": "8480-6"} if path.endswith("observations/") else {},
        )
        response = case.call_and_validate(headers=credentials["clinician"])
        assert response.status_code == 200, path
