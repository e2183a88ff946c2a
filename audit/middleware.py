"""Opens an audit scope for each request and writes its rows before the response leaves."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.http import HttpRequest, HttpResponse

from accounts.models import User
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
            if response.status_code < 400:
                _admin_record_page(request)
        if scope.entries:
            match = request.resolver_match
            scope.resource = match.view_name if match is not None else request.path[:120]
            recorder.flush(scope)
        return response


def _admin_record_page(request: HttpRequest) -> None:
    """A data manager's view or edit of one clinical record in the admin (a patient, or a row
    with a ``patient``): recorded like a clinician's page, against that patient."""
    match = request.resolver_match
    user = getattr(request, "user", None)
    if match is None or not isinstance(user, User) or not user.is_staff or not match.url_name:
        return
    if match.app_name != "admin" or not match.url_name.startswith("patients_"):
        return
    parts = match.url_name.split("_")  # patients_<model>_change
    object_id = str(match.kwargs.get("object_id", ""))
    if len(parts) != 3 or parts[2] not in ("change", "history") or not object_id.isdigit():
        return
    try:
        model = apps.get_model("patients", parts[1])
    except LookupError:
        return
    if parts[1] == "patient":
        patient_id: int | None = int(object_id)
    else:
        try:
            model._meta.get_field("patient")
        except FieldDoesNotExist:
            return
        patient_id = (
            model._default_manager.filter(pk=int(object_id))
            .values_list("patient_id", flat=True)
            .first()
        )
    if patient_id is not None:
        recorder.patient_accessed(user=user, patient_id=patient_id)
