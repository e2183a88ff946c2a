"""Writes for signing in: the sign-in waiting for its second step, enrolling and checking an
authenticator app (TOTP), and finishing the sign-in with the second factor on the session."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import qrcode
import qrcode.image.svg
from django.contrib.auth import login as auth_login
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from signin.events import TOTP
from signin.selectors import PENDING, PendingSignIn, _now

DEVICE_NAME = "Authenticator app"


@dataclass(frozen=True)
class CodeCheck:
    #: the device that accepted the code, None if none did
    device: TOTPDevice | None
    #: when no device would check a code yet (too many wrong ones), seconds until one will
    wait_seconds: int = 0


def signin_pending_start(*, request: HttpRequest, user: User, next_url: str) -> None:
    """The password was right but a code must follow: remember whose it was, not signed in yet.

    The browser gets a new session key, as it does again when the sign-in completes.
    """
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk,
        "backend": getattr(user, "backend", ""),
        "since": _now(),
        "next": next_url,
    }


def signin_pending_clear(*, request: HttpRequest) -> None:
    """Forget an unfinished sign-in of this browser (someone else signed in with a password)."""
    request.session.pop(PENDING, None)


def signin_complete(*, request: HttpRequest, pending: PendingSignIn, device: TOTPDevice) -> None:
    """Sign in with the second factor: Django's login (a new session key) and the device that
    verified the code on the session, which is what the admin site asks for."""
    request.session.pop(PENDING, None)
    auth_login(request, pending.user, backend=pending.backend or None)
    otp_login(request, device)


def totp_enrolment_device(*, request: HttpRequest, pending: PendingSignIn) -> TOTPDevice:
    """The authenticator being enrolled in this sign-in: a new key each sign-in, replacing any
    earlier unconfirmed one, so a key shown to someone else before is worth nothing."""
    if pending.enrolment_device_id is not None:
        device = TOTPDevice.objects.filter(
            pk=pending.enrolment_device_id, user=pending.user, confirmed=False
        ).first()
        if device is not None:
            return device
    with transaction.atomic():
        TOTPDevice.objects.filter(user=pending.user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=pending.user, name=DEVICE_NAME, confirmed=False)
    request.session[PENDING] = {**request.session[PENDING], "enrolment_device": device.pk}
    return device


def totp_check(
    *, request: HttpRequest, user: User, code: str, devices: QuerySet[TOTPDevice]
) -> CodeCheck:
    """Check a code against the user's devices. A wrong code counts towards django-otp's throttle
    (each further failure doubles the wait before the device checks a code again) and, as a failed
    sign-in, towards the lockout (django-axes) and into the sign-in log."""
    wait = 0
    with transaction.atomic():
        for device in devices.select_for_update():
            if not device.verify_is_allowed()[0]:
                wait = max(wait, _throttle_wait(device))
            elif device.verify_token(code):
                return CodeCheck(device=device)
    user_login_failed.send(
        sender=__name__,
        credentials={"username": user.username},
        request=request,
        factor=TOTP,
        reason="wrong code" if wait == 0 else "code refused while throttled",
    )
    return CodeCheck(device=None, wait_seconds=wait)


def signin_refused_while_locked(*, request: HttpRequest, user: User) -> None:
    """A code sent while locked out is not checked; it counts as a failure (the cool-off starts
    again, as for a password tried while locked out) and is logged as a lockout."""
    user_login_failed.send(
        sender=__name__,
        credentials={"username": user.username},
        request=request,
        factor=TOTP,
        reason="locked out",
    )


def _throttle_wait(device: TOTPDevice) -> int:
    allowed, info = device.verify_is_allowed()
    if allowed or not info or "locked_until" not in info:
        return 0
    return max(1, int((info["locked_until"] - timezone.now()).total_seconds() + 0.999))


def totp_confirm(*, device: TOTPDevice) -> None:
    """The first right code confirms an enrolled device: from now on it is the user's second factor."""
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user_id=device.user_id, confirmed=False).exclude(
        pk=device.pk
    ).delete()


def totp_device_set(*, user: User, key_hex: str, name: str = DEVICE_NAME) -> TOTPDevice:
    """A confirmed device with a given key (the demo's data manager, whose key is published)."""
    device, _ = TOTPDevice.objects.update_or_create(
        user=user, name=name, defaults={"key": key_hex, "confirmed": True}
    )
    return device


def totp_key_base32(device: TOTPDevice) -> str:
    """The key as typed into an authenticator app: base32 in groups of four."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's ``otpauth://`` address as an inline SVG QR code, drawn here (no outside service
    ever sees the key)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    svg: str = image.to_string(encoding="unicode")
    return svg
