"""The patient's own copy of their record: a FHIR R4 bundle and a printable HTML summary in one ZIP.

A data manager hands it over from the admin (Patients → "Give the patient a copy of their record");
every copy is recorded in the access log.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from audit.services import audit_events_write
from patients.fhir.exporter import patient_bundle
from patients.models import ClinicalNote, Condition, Encounter, Medication, Observation, Patient

#: How a copy appears in the access log (``AuditEvent.resource``).
AUDIT_RESOURCE = "patient_copy"
BUNDLE_NAME = "record.fhir.json"
SUMMARY_NAME = "summary.html"


@dataclass(frozen=True)
class PatientCopy:
    bundle: dict[str, Any]
    summary_html: str
    created_at: dt.datetime

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(BUNDLE_NAME, json.dumps(self.bundle, indent=1))
            archive.writestr(SUMMARY_NAME, self.summary_html)
        return buffer.getvalue()


def _measurements(patient: Patient) -> list[dict[str, Any]]:
    """Readings grouped by what was measured, newest first; a blood-pressure panel shows as its
    systolic and diastolic rows (the panel row itself holds no value)."""
    groups: dict[str, dict[str, Any]] = {}
    rows = Observation.objects.filter(patient=patient).order_by("-effective_at", "code", "pk")
    for obs in rows:
        if obs.value is not None:
            shown = f"{obs.value:g} {obs.unit}".strip()
        else:
            shown = obs.value_display or obs.value_string
        if not shown:
            continue
        group = groups.setdefault(obs.code, {"name": obs.display or obs.code, "readings": []})
        group["readings"].append({"at": obs.effective_at, "value": shown, "flag": obs.implausible})
    return sorted(groups.values(), key=lambda g: str(g["name"]).lower())


def _summary_context(patient: Patient, *, issued_by: User, now: dt.datetime) -> dict[str, Any]:
    return {
        "patient": patient,
        "issued_by": issued_by.get_full_name() or issued_by.get_username(),
        "now": now,
        "conditions": Condition.objects.filter(patient=patient).order_by("-onset_at", "pk"),
        "medications": Medication.objects.filter(patient=patient).order_by("-start", "pk"),
        "measurements": _measurements(patient),
        "encounters": Encounter.objects.filter(patient=patient).order_by("-start", "pk"),
        "notes": ClinicalNote.objects.filter(
            patient=patient, status=ClinicalNote.Status.SIGNED, next_version__isnull=True
        ).order_by("-written_at", "pk"),
        "bundle_name": BUNDLE_NAME,
    }


def patient_copy_issue(
    *,
    patient: Patient,
    issued_by: User,
    ip: str | None = None,
    request_id: str = "",
    now: dt.datetime | None = None,
) -> PatientCopy:
    """Build the patient's copy of their whole record and record in the access log who made it."""
    when = now or timezone.now()
    copy = PatientCopy(
        bundle=patient_bundle(patient),
        summary_html=render_to_string(
            "patients/patient_copy.html", _summary_context(patient, issued_by=issued_by, now=when)
        ),
        created_at=when,
    )
    audit_events_write(
        events=[
            AuditEvent(
                at=when,
                actor=issued_by,
                actor_name=issued_by.get_username(),
                patient_id=patient.pk,
                action=AuditEvent.Action.READ,
                resource=AUDIT_RESOURCE,
                ip=ip,
                request_id=request_id,
                detail="The patient's own copy: the whole record as a FHIR bundle and a printable summary",
            )
        ]
    )
    return copy
