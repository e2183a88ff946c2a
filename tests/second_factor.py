"""Signing staff in for tests that are not about signing in: as the code step leaves a session
(Django's login and a verified authenticator), and the current code of a device."""

from __future__ import annotations

import time
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_device(user: Any) -> TOTPDevice:
    """The user's confirmed authenticator, made if they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test phone", confirmed=True)


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The 6 digits the device's app shows at ``at`` (now by default)."""
    token = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    token.time = time.time() if at is None else at
    return f"{token.token():0{device.digits}d}"


def verified_login(client: Client, user: Any) -> Client:
    """``client`` signed in as ``user`` with a verified second factor on the session."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
    session.save()
    return client
