"""The sign-in log (SECURITY.md 12): failed passwords, wrong second-factor codes and lockouts, one
JSON line each with the user name as typed, the client's address and the request id (added by
``twinportal.logging.RequestIdFilter``). Passwords and codes are never logged."""

from __future__ import annotations

import logging
from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger("signin")

#: ``factor`` of a ``user_login_failed`` sent by the second-factor step
TOTP = "totp"


def _address(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(getattr(request, "axes_ip_address", None) or get_client_ip_address(request) or "")


def _password_reason(request: HttpRequest | None) -> str:
    # django-axes' receiver runs first (its app is listed first) and counts this failure: past the
    # limit, the password was not even checked
    failures = getattr(request, "axes_failures_since_start", None) or 0
    if failures > settings.AXES_FAILURE_LIMIT:
        return "refused while locked out"
    return "wrong user name or password"


def sign_in_failed_log(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    """``user_login_failed`` receiver: a wrong password, or a wrong code (``factor="totp"``)."""
    second_factor = kwargs.get("factor") == TOTP
    reason = kwargs.get("reason") or _password_reason(request)
    logger.warning(
        "second factor failed" if second_factor else "sign-in failed",
        extra={
            "event": "second_factor_failed" if second_factor else "sign_in_failed",
            "username": str(credentials.get("username", "")),
            "ip": _address(request),
            "reason": str(reason),
            "path": request.path if request is not None else "",
        },
    )


def sign_in_locked_out_log(
    sender: Any,
    request: HttpRequest | None = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    """django-axes' ``user_locked_out`` receiver: the limit of failures is reached, or an attempt
    was made while locked out."""
    logger.warning(
        "sign-in locked out",
        extra={
            "event": "sign_in_locked_out",
            "username": username or "",
            "ip": ip_address or _address(request),
            "path": request.path if request is not None else "",
        },
    )
