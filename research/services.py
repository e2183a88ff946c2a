"""Writes for research use: recording and withdrawing consent."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from patients.models import Patient
from research.models import ResearchConsent


class ConsentError(Exception):
    """A consent that cannot be recorded or withdrawn as asked (already active, already withdrawn)."""


def consent_record(
    *, patient: Patient, recorded_by: User, now: dt.datetime | None = None
) -> ResearchConsent:
    """Record that ``patient`` consents to research use of their record, from ``now`` on."""
    try:
        with transaction.atomic():
            return ResearchConsent.objects.create(
                patient=patient, recorded_by=recorded_by, recorded_at=now or timezone.now()
            )
    except IntegrityError as exc:
        # the partial unique index allows one active consent per patient, even under races
        raise ConsentError(f"patient {patient.pk} already has an active research consent") from exc


def consent_withdraw(
    *, consent: ResearchConsent, withdrawn_by: User, now: dt.datetime | None = None
) -> ResearchConsent:
    """Withdraw a consent from ``now`` on; the row stays, with who withdrew it and when."""
    when = now or timezone.now()
    updated = ResearchConsent.objects.filter(pk=consent.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=when, withdrawn_by=withdrawn_by
    )
    if not updated:
        raise ConsentError(f"research consent {consent.pk} is already withdrawn")
    consent.refresh_from_db()
    return consent
