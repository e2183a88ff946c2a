"""Tokens that let one patient's home device send readings, and nothing else.

The secret itself is never stored: only its SHA-256 (to check it) and a short non-secret prefix (to
find the row without scanning). A revoked or expired token stays in the table as the record of who
issued it, who revoked it and when it was last used.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from patients.models import Patient


class DeviceKind(models.TextChoices):
    BP_CUFF = "bp_cuff", "Blood-pressure cuff"
    SCALE = "scale", "Weighing scale"
    GLUCOSE_METER = "glucose_meter", "Glucose meter"


class TokenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class DeviceToken(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="device_tokens")
    kind = models.CharField(max_length=20, choices=DeviceKind.choices)
    label = models.CharField(
        max_length=120, help_text="Which device this is, e.g. 'Omron cuff at home'."
    )
    prefix = models.CharField(
        max_length=8, db_index=True, editable=False, help_text="Not secret: finds the token."
    )
    secret_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Leave empty for a token that does not expire."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["patient", "kind"], name="devicetoken_patient_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} token {self.display_prefix} ({self.label})"

    @property
    def display_prefix(self) -> str:
        return f"tpd_{self.prefix}…"

    def status_at(self, now: dt.datetime) -> TokenStatus:
        if self.revoked_at is not None:
            return TokenStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return TokenStatus.EXPIRED
        return TokenStatus.ACTIVE
