"""``Authorization: Device <token>``: home devices authenticate the ingestion endpoint, and only it.

The class is not in ``DEFAULT_AUTHENTICATION_CLASSES``, so every other endpoint ignores the header
and answers 401 as to any caller without credentials.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from devices import selectors, services
from devices.models import DeviceToken, TokenStatus

KEYWORD = "Device"


class DeviceClient:
    """Who is calling when a device token authenticates: a device, never a user account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, token: DeviceToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"device token {self.token.pk}"


class DeviceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[DeviceClient, DeviceToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Malformed Authorization header: expected 'Device <token>' with no spaces in the token."
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Invalid device token.") from exc
        token = selectors.device_token_for_secret(secret=secret)
        if token is None:
            raise AuthenticationFailed("Invalid device token.")
        now = timezone.now()
        status = token.status_at(now)
        if status == TokenStatus.REVOKED:
            raise AuthenticationFailed(
                "This device token has been revoked; ask the care team for a new one."
            )
        if status == TokenStatus.EXPIRED:
            raise AuthenticationFailed(
                "This device token has expired; ask the care team for a new one."
            )
        services.device_token_touch(token=token, now=now)
        return DeviceClient(token), token

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="device readings"'


class HasDeviceToken(BasePermission):
    """Only a request authenticated by a device token (never a user's session or token)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, DeviceToken)
