"""Reads of the audit app: active emergency access, and a patient's access log."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent, EmergencyAccess
from patients.models import Patient


def emergency_access_active(*, user: User, patient_id: int, now: dt.datetime | None = None) -> bool:
    """Whether the user holds emergency access to this patient right now."""
    return EmergencyAccess.objects.filter(
        user=user, patient_id=patient_id, expires_at__gt=now or timezone.now()
    ).exists()


def patient_access_log(*, patient_id: int) -> QuerySet[AuditEvent]:
    """Every recorded access to one patient's record, newest first (the "who viewed" report)."""
    return (
        AuditEvent.objects.filter(patient_id=patient_id)
        .select_related("actor")
        .order_by("-at", "-pk")
    )


def patient_for_emergency_access(*, patient_id: int | None = None, mrn: str = "") -> Patient:
    """The patient an emergency access request names, by record number or exact MRN, looked up
    outside the care teams on purpose (``Patient.DoesNotExist`` when there is none)."""
    if patient_id:
        return Patient.objects.get(pk=patient_id)
    if not mrn.strip():
        raise Patient.DoesNotExist("No patient named.")
    return Patient.objects.get(mrn=mrn.strip())
