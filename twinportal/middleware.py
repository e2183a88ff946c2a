"""Request-wide middleware: a request id for logs and audit, the security headers Django lacks, and
who made each change in the clinical history."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse
from pghistory.middleware import HistoryMiddleware

from twinportal.logging import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Scripts only from files served here (no inline scripts, no eval: the pages draw SVG plotly
# traces, which need neither). plotly sets inline styles on its SVG, hence 'unsafe-inline' for
# styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class RequestIdMiddleware:
    """Take a well-formed ``X-Request-ID`` from the proxy or make one; echo it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # read by audit and logging
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class SecurityHeadersMiddleware:
    """Content-Security-Policy everywhere; ``Cache-Control: no-store`` on anything behind a login."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "no-store"
        return response


class HistoryContextMiddleware(HistoryMiddleware):
    """Each clinical change a request makes is attributed in its history (property 11): the user
    (also when a token signs in inside the view), the address and the request id.

    Only requests that may write, and only on PostgreSQL (the SQLite demo has no history triggers,
    and the context is set with PostgreSQL's ``set_config``).
    """

    def get_context(self, request: HttpRequest) -> dict[str, object]:
        return {**super().get_context(request), "request_id": getattr(request, "request_id", "")}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], HttpResponse] = self.get_response
        if connection.vendor != "postgresql" or request.method in ("GET", "HEAD", "OPTIONS"):
            return get_response(request)
        response: HttpResponse = super().__call__(request)  # type: ignore[no-untyped-call]  # pghistory is untyped
        return response
