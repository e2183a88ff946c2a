"""Reads for signing in: who needs a second factor, their confirmed authenticator devices, and the
sign-in waiting for its second step."""

from __future__ import annotations

import time
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role, User

#: the session key of a sign-in whose password was right and whose code is still to come
PENDING = "signin_pending"
#: the second step must follow the password within this many seconds
PENDING_SECONDS = 5 * 60


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class PendingSignIn:
    user: User
    backend: str
    #: where to go after the second step (already checked to be on this site), or ""
    next_url: str
    #: the authenticator being enrolled in this sign-in, if any
    enrolment_device_id: int | None


def second_factor_required(user: User) -> bool:
    """Staff (data managers, administrators, anyone the admin site would let in) need a TOTP code
    after their password; clinicians do not."""
    return bool(user.is_staff or user.is_superuser or user.role != Role.CLINICIAN)


def totp_devices_confirmed(user: User) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True)  # type: ignore[no-any-return]  # django-otp is untyped


def signin_pending_get(request: HttpRequest) -> PendingSignIn | None:
    """The sign-in of this browser waiting for its code, or None (none, expired or the account
    disabled since)."""
    data = request.session.get(PENDING)
    if not isinstance(data, dict) or _now() - float(data.get("since", 0)) > PENDING_SECONDS:
        return None
    user_id = data.get("user")
    if not isinstance(user_id, int):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if not isinstance(user, User):
        return None
    return PendingSignIn(
        user=user,
        backend=str(data.get("backend", "")),
        next_url=str(data.get("next", "")),
        enrolment_device_id=data.get("enrolment_device"),
    )


def signin_locked(*, request: HttpRequest, user: User) -> bool:
    """Whether django-axes has this user name locked out from this address."""
    return not AxesProxyHandler.is_allowed(request, {"username": user.username})
