"""Collects the patient accesses of one request (or task) and writes them with one INSERT at its end.

The selectors that resolve patient access (``patients.selectors.patient_get`` and the page's list)
call :func:`patient_accessed`, :func:`patient_denied` or :func:`patients_listed`; the
``AuditMiddleware`` opens a scope per request and flushes it before the response leaves, so a
request whose audit rows cannot be written fails instead of answering unaudited. Outside any scope
(a shell, a management command) a call writes its row at once.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent


@dataclass
class AuditScope:
    """Who is acting, where from, and the accesses seen so far (one per patient and action)."""

    resource: str = ""
    write: bool = False
    ip: str | None = None
    request_id: str = ""
    actor_name: str = ""
    entries: dict[tuple[int | None, str], AuditEvent] = field(default_factory=dict)

    def add(
        self,
        *,
        user: User | None,
        patient_id: int | None,
        action: str,
        break_glass: bool = False,
        detail: str = "",
        actor_name: str = "",
    ) -> None:
        key = (patient_id, action)
        if key in self.entries:
            self.entries[key].break_glass |= break_glass
            return
        self.entries[key] = AuditEvent(
            actor=user,
            actor_name=actor_name or (user.get_username() if user is not None else self.actor_name),
            patient_id=patient_id,
            action=action,
            break_glass=break_glass,
            detail=detail,
        )

    def events(self, *, at: dt.datetime) -> list[AuditEvent]:
        for event in self.entries.values():
            event.at = at
            event.resource = self.resource[:120]
            event.ip = self.ip
            event.request_id = self.request_id
        return list(self.entries.values())


#: The largest id a PostgreSQL bigint primary key holds.
_MAX_ID = 2**63 - 1

_current: contextvars.ContextVar[AuditScope | None] = contextvars.ContextVar(
    "audit_scope", default=None
)


def current_scope() -> AuditScope | None:
    return _current.get()


@contextmanager
def audit_scope(scope: AuditScope) -> Iterator[AuditScope]:
    """Collect accesses into ``scope`` while the block runs; the caller flushes it (:func:`flush`)."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def flush(scope: AuditScope, *, now: dt.datetime | None = None) -> int:
    """Write the scope's rows in one INSERT and forget them; returns how many were written."""
    from audit.services import audit_events_write

    events = scope.events(at=now or timezone.now())
    scope.entries = {}
    return len(audit_events_write(events=events))


def _record(
    *,
    user: User | None,
    patient_ids: Iterable[int | None],
    action: str | None = None,
    break_glass: bool = False,
    detail: str = "",
    actor_name: str = "",
) -> None:
    scope = _current.get()
    standalone = scope is None
    if scope is None:
        scope = AuditScope(resource="direct")
    for patient_id in patient_ids:
        scope.add(
            user=user,
            patient_id=patient_id,
            action=action or (AuditEvent.Action.WRITE if scope.write else AuditEvent.Action.READ),
            break_glass=break_glass,
            detail=detail,
            actor_name=actor_name,
        )
    if standalone:
        flush(scope)


def patient_accessed(*, user: User | None, patient_id: int, break_glass: bool = False) -> None:
    """A read (safe request) or write (any other) of one patient's record."""
    _record(user=user, patient_ids=[patient_id], break_glass=break_glass)


def patients_listed(*, user: User | None, patient_ids: Iterable[int]) -> None:
    """The patients a list page or endpoint shows: one row each, still one INSERT per request."""
    _record(user=user, patient_ids=patient_ids)


def patients_exported(*, user: User | None, patient_ids: Iterable[int]) -> None:
    """Whole records handed out (a FHIR export): a read, whatever the request's method."""
    _record(user=user, patient_ids=patient_ids, action=AuditEvent.Action.READ)


def patient_denied(*, user: User | None, patient_id: int | None) -> None:
    """A patient (or a child object's patient) outside the caller's care teams: the 404 of scoping.

    An id no primary key can hold (a probe such as 2**64) names no patient: the denial is still
    recorded, without a patient and with the id asked for in ``detail``.
    """
    if patient_id is not None and not (0 < patient_id <= _MAX_ID):
        _record(
            user=user,
            patient_ids=[None],
            action=AuditEvent.Action.DENIED,
            detail=f"no such patient id: {str(patient_id)[:40]}",
        )
        return
    _record(user=user, patient_ids=[patient_id], action=AuditEvent.Action.DENIED)


def emergency_access_granted(*, user: User, patient_id: int, reason: str) -> None:
    _record(
        user=user,
        patient_ids=[patient_id],
        action=AuditEvent.Action.EMERGENCY_ACCESS,
        break_glass=True,
        detail=reason,
    )


def device_accessed(*, device: str, patient_id: int) -> None:
    """A home device sending readings to its patient's record: the device is the actor."""
    _record(user=None, patient_ids=[patient_id], actor_name=device)


def system_access(
    *, actor_name: str, resource: str, patient_ids: Iterable[int], write: bool
) -> None:
    """Background work on patients' records, recorded under a named system actor (``system:...``)."""
    scope = AuditScope(resource=resource, write=write, actor_name=actor_name)
    with audit_scope(scope):
        _record(user=None, patient_ids=patient_ids)
    flush(scope)
