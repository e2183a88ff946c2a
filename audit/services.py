"""Writes of the audit app: audit rows (INSERT only) and emergency access with its notification."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit import recorder
from audit.models import AuditEvent, EmergencyAccess, PrivacyOfficerNotification
from patients.models import Patient
from patients.selectors import patients_visible_to

logger = logging.getLogger(__name__)

#: The shortest reason accepted for emergency access (a word or two is not a reason).
MIN_REASON_LENGTH = 10


def audit_config() -> dict[str, object]:
    """``TWINPORTAL_AUDIT`` read when called, never at import time."""
    return dict(settings.TWINPORTAL_AUDIT)


def audit_events_write(*, events: Sequence[AuditEvent]) -> list[AuditEvent]:
    """Append rows to the log in one INSERT (the table refuses anything but INSERT)."""
    if not events:
        return []
    return AuditEvent.objects.bulk_create(events)


class EmergencyAccessRefused(ValueError):
    """The request for emergency access is not allowed (not a clinician, no reason, ...)."""


def emergency_access_grant(
    *,
    user: User,
    patient: Patient,
    reason: str,
    request_id: str = "",
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> EmergencyAccess:
    """Give a clinician outside the patient's care teams access for the configured window.

    The grant, its audit row (with the reason, flagged) and the privacy officer's notification are
    written together; the e-mail goes after commit, and whether it went is kept on the notification.
    """
    reason = reason.strip()
    if not (user.is_active and user.is_clinician):
        raise EmergencyAccessRefused("only clinicians may request emergency access")
    if len(reason) < MIN_REASON_LENGTH:
        raise EmergencyAccessRefused(
            f"reason: say why access is needed (at least {MIN_REASON_LENGTH} characters)"
        )
    if patients_visible_to(user).filter(pk=patient.pk).exists():
        raise EmergencyAccessRefused("this patient is already on your care teams")
    now = now or timezone.now()
    minutes = int(str(audit_config()["break_glass_minutes"]))
    with transaction.atomic():
        grant = EmergencyAccess.objects.create(
            user=user,
            patient=patient,
            reason=reason,
            granted_at=now,
            expires_at=now + dt.timedelta(minutes=minutes),
            request_id=request_id,
            ip=ip,
        )
        notification = PrivacyOfficerNotification.objects.create(
            emergency_access=grant,
            recipient=str(audit_config()["privacy_officer_email"]),
            subject=f"TwinPortal emergency access by {user.get_username()}",
            body=_notification_body(grant),
            created_at=now,
        )
        recorder.emergency_access_granted(user=user, patient_id=patient.pk, reason=reason)
        transaction.on_commit(lambda: privacy_officer_notify(notification=notification))
    return grant


def _notification_body(grant: EmergencyAccess) -> str:
    # Ids and times only: the patient's name and the reason stay in the application.
    who_viewed = reverse("admin:audit_auditevent_patient", args=[grant.patient_id])
    return (
        f"{grant.user.get_username()} ({grant.user.get_full_name() or 'no name'}) used emergency "
        f"access to patient record {grant.patient_id} at {grant.granted_at:%Y-%m-%d %H:%M} UTC, "
        f"valid until {grant.expires_at:%H:%M} UTC (request {grant.request_id or '-'}).\n"
        f"The reason given and every access in the window: {who_viewed}\n"
    )


def privacy_officer_notify(
    *, notification: PrivacyOfficerNotification, now: dt.datetime | None = None
) -> PrivacyOfficerNotification:
    """Send the e-mail through Django's e-mail backend; record when it went or why it did not."""
    try:
        send_mail(
            notification.subject,
            notification.body,
            None,
            [notification.recipient],
            fail_silently=False,
        )
    except Exception as exc:  # any backend failure is recorded; the access itself stands
        logger.exception("privacy officer notification failed")
        notification.error = f"{type(exc).__name__}: {exc}"[:2000]
        notification.save(update_fields=["error"])
        return notification
    notification.sent_at = now or timezone.now()
    notification.error = ""
    notification.save(update_fields=["sent_at", "error"])
    return notification
