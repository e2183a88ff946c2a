"""Property 12 (signing in): failed passwords, wrong authenticator codes and lockouts are logged as
JSON lines with the user name as typed, the client's address and the request id; no password or
code is ever in the log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse

from tests.second_factor import totp_device
from twinportal.logging import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log record of the process as the console handler writes it off a terminal."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def events(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "signin"]


def test_a_wrong_password_is_logged_with_name_address_and_request_id(clinician, log_lines) -> None:
    response = Client().post(
        reverse("login"),
        {"username": "Ana.GP", "password": "a-wrong-password-123"},
        REMOTE_ADDR="192.0.2.7",
        HTTP_X_REQUEST_ID="signin-test-0001",
    )
    assert response.status_code == 200
    [line] = events(log_lines)
    assert line["event"] == "sign_in_failed" and line["level"] == "WARNING"
    assert line["username"] == "Ana.GP"  # as typed
    assert line["ip"] == "192.0.2.7"
    assert line["request_id"] == response["X-Request-ID"] == "signin-test-0001"
    assert "a-wrong-password-123" not in log_lines.getvalue()


def test_an_unknown_user_name_is_logged_too(db, log_lines) -> None:
    Client().post(reverse("login"), {"username": "nobody.here", "password": "x" * 14})
    [line] = events(log_lines)
    assert (line["event"], line["username"]) == ("sign_in_failed", "nobody.here")


def test_a_lockout_is_logged(clinician, log_lines) -> None:
    client = Client()
    for _ in range(5):
        response = client.post(
            reverse("login"),
            {"username": "ana.gp", "password": "a-wrong-password-123"},
            REMOTE_ADDR="192.0.2.8",
        )
    assert response.status_code == 429
    lines = events(log_lines)
    assert sorted(line["event"] for line in lines) == ["sign_in_failed"] * 5 + [
        "sign_in_locked_out"
    ]
    [locked] = [line for line in lines if line["event"] == "sign_in_locked_out"]
    assert (locked["username"], locked["ip"]) == ("ana.gp", "192.0.2.8")
    assert locked["request_id"] == response["X-Request-ID"]

    # an attempt while locked out, the right password included, is logged as refused
    again = client.post(
        reverse("login"), {"username": "ana.gp", "password": PASSWORD}, REMOTE_ADDR="192.0.2.8"
    )
    assert again.status_code == 429
    refused = [line for line in events(log_lines) if line["request_id"] == again["X-Request-ID"]]
    assert sorted((line["event"], line.get("reason", "")) for line in refused) == [
        ("sign_in_failed", "refused while locked out"),
        ("sign_in_locked_out", ""),
    ]
    assert PASSWORD not in log_lines.getvalue()
    assert "a-wrong-password-123" not in log_lines.getvalue()


def test_a_wrong_authenticator_code_is_logged_without_the_code(data_manager, log_lines) -> None:
    totp_device(data_manager)
    client = Client()
    client.post(reverse("login"), {"username": "dana.dm", "password": PASSWORD})
    response = client.post(
        reverse("login-code"),
        {"code": "424242"},
        REMOTE_ADDR="192.0.2.9",
        HTTP_X_REQUEST_ID="signin-test-0002",
    )
    assert response.status_code == 200
    [line] = events(log_lines)
    assert line["event"] == "second_factor_failed"
    assert (line["username"], line["ip"], line["request_id"]) == (
        "dana.dm",
        "192.0.2.9",
        "signin-test-0002",
    )
    assert line["reason"] == "wrong code"
    assert "424242" not in log_lines.getvalue()
    assert PASSWORD not in log_lines.getvalue()
