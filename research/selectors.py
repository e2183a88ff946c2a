"""Reads of research consent."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from patients.models import Patient
from research.models import ResearchConsent


def consents_active_at(*, at: dt.datetime) -> QuerySet[ResearchConsent]:
    """Consents recorded by ``at`` and not withdrawn by then."""
    return ResearchConsent.objects.filter(recorded_at__lte=at).filter(
        Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gt=at)
    )


def patients_consenting(*, at: dt.datetime) -> QuerySet[Patient]:
    """Patients whose consent to research use is in force at ``at``, in id order."""
    return Patient.objects.filter(pk__in=consents_active_at(at=at).values("patient_id")).order_by(
        "pk"
    )


def consent_active_for(*, patient: Patient) -> ResearchConsent | None:
    return ResearchConsent.objects.filter(patient=patient, withdrawn_at__isnull=True).first()
