"""Opens an audit scope for each request and writes its rows before the response leaves."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import recorder

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuditMiddleware:
    """One INSERT per request that touched patients (none for the others).

    Placed after ``RequestIdMiddleware``. Exceptions in the view have already become responses
    by the time the scope is flushed, so a failed request is audited too; a failure to write the
    audit rows is an error response, never an unaudited answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = recorder.AuditScope(
            write=request.method not in _SAFE_METHODS,
            ip=request.META.get("REMOTE_ADDR") or None,
            request_id=getattr(request, "request_id", ""),
        )
        with recorder.audit_scope(scope):
            response = self.get_response(request)
        if scope.entries:
            match = request.resolver_match
            scope.resource = match.view_name if match is not None else request.path[:120]
            recorder.flush(scope)
        return response
