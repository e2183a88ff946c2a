"""``Authorization: Bearer <token>`` (or ``Token <token>``): an API token acts as its user, within
its scope.

A token is refused when it is unknown, revoked, expired, when its user is disabled, or when the
user's password changed or the account was disabled since it was issued (the user's session
generation moved on; enabling the account again does not bring the token back).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts import selectors, services
from accounts.models import ApiScope, ApiToken, ApiTokenStatus, User

KEYWORD = "Bearer"
#: also accepted, so clients written for the earlier ``Token`` scheme only change their secret
KEYWORDS = (b"bearer", b"token")

_REFUSALS = {
    ApiTokenStatus.REVOKED: "This API token has been revoked.",
    ApiTokenStatus.EXPIRED: "This API token has expired; ask a data manager for a new one.",
    ApiTokenStatus.SUPERSEDED: (
        "This API token ended when its account's password changed or the account was disabled."
    ),
}


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>' with no spaces in it."
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Invalid API token.") from exc
        token = selectors.api_token_for_secret(secret=secret)
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Invalid API token.")
        now = timezone.now()
        status = token.status_at(now, user_generation=token.user.session_generation)
        if status != ApiTokenStatus.ACTIVE:
            raise AuthenticationFailed(_REFUSALS[status])
        services.api_token_touch(token=token, now=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'


class ApiTokenScope(BasePermission):
    """What a token may do: ``read`` tokens the safe methods, ``import`` tokens only the views that
    list ``import`` in their ``api_token_scopes``. Sessions are not limited here."""

    message = "This API token's scope does not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        if token.scope == ApiScope.READ:
            return request.method in SAFE_METHODS
        return token.scope in getattr(view, "api_token_scopes", ())
