"""Patients' consent to research use of their records.

A consent is a row from the moment it is recorded; withdrawing it fills in who withdrew it and when,
so the history of every grant and withdrawal stays readable. At most one consent per patient is active.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ResearchConsent(models.Model):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="research_consents"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(withdrawn_at__isnull=True),
                name="research_consent_one_active_per_patient",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True, withdrawn_by__isnull=True)
                | Q(withdrawn_at__isnull=False, withdrawn_by__isnull=False),
                name="research_consent_withdrawn_by_whom_and_when",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True)
                | Q(withdrawn_at__gte=models.F("recorded_at")),
                name="research_consent_withdrawn_after_recorded",
            ),
        ]

    def __str__(self) -> str:
        state = f"withdrawn {self.withdrawn_at:%Y-%m-%d}" if self.withdrawn_at else "active"
        return f"Research consent of patient {self.patient_id} ({state})"

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None
