"""The access log (one append-only row per read, write or denied access of a patient's record)
and emergency ("break-the-glass") access with its privacy-officer notification."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One access to one patient's record. Append-only: a PostgreSQL trigger refuses UPDATE,
    DELETE and TRUNCATE (migration 0002), and the admin has no change or delete permission.

    No foreign key to the patient, and none enforced to the actor: the log outlives the rows it
    speaks of, and a cascade could never delete from it anyway.
    """

    class Action(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        DENIED = "denied", "Denied"
        EMERGENCY_ACCESS = "emergency_access", "Emergency access granted"

    at = models.DateTimeField(db_index=True, help_text="UTC")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(
        max_length=150, help_text="Username at the time, or a named system actor (system:...)"
    )
    patient_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    resource = models.CharField(
        max_length=120, help_text="The page, API endpoint or task (URL name or task name)"
    )
    break_glass = models.BooleanField(default=False)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True, help_text="The reason given for emergency access")

    class Meta:
        indexes = [models.Index(fields=["patient_id", "at"], name="audit_patient_at")]
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} patient {self.patient_id}"
        )


class EmergencyAccess(models.Model):
    """A clinician outside the patient's care teams given access for a fixed window, with a reason."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergency_accesses"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="emergency_accesses"
    )
    reason = models.TextField()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "emergency accesses"
        indexes = [
            models.Index(fields=["user", "patient", "expires_at"], name="audit_emergency_active")
        ]
        ordering = ["-granted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} → patient {self.patient_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class PrivacyOfficerNotification(models.Model):
    """The e-mail sent to the privacy officer about one emergency access, and whether it went."""

    emergency_access = models.OneToOneField(
        EmergencyAccess, on_delete=models.CASCADE, related_name="notification"
    )
    recipient = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipient}"
