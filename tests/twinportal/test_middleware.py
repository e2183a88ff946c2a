"""Every response carries a request id and the security headers; logs are JSON lines with that id."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from twinportal.logging import JsonFormatter, RequestIdFilter, request_id_var

pytestmark = pytest.mark.django_db


def test_a_response_carries_a_request_id_and_security_headers() -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert len(response["X-Request-ID"]) == 32
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_a_well_formed_incoming_request_id_is_kept_and_a_malformed_one_replaced() -> None:
    assert (
        Client().get("/accounts/login/", HTTP_X_REQUEST_ID="abc12345-proxy")["X-Request-ID"]
        == "abc12345-proxy"
    )
    assert (
        Client().get("/accounts/login/", HTTP_X_REQUEST_ID="<script>")["X-Request-ID"] != "<script>"
    )


def test_log_records_are_json_with_the_request_id() -> None:
    record = logging.LogRecord(
        "twinportal.test", logging.INFO, __file__, 1, "imported %s", ("bundle",), None
    )
    record.import_batch = 7
    token = request_id_var.set("req-123456")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    payload = json.loads(JsonFormatter().format(record))
    assert payload["message"] == "imported bundle"
    assert payload["request_id"] == "req-123456"
    assert payload["import_batch"] == 7
