"""The absolute cap on a session (SECURITY.md 7): however active the user, a session ends a fixed
time after sign-in (``TWINPORTAL_SESSION_MAX_SECONDS``, 12 hours by default). The idle timeout is
Django's own (``SESSION_COOKIE_AGE`` renewed on every request)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

#: the session key holding the sign-in time, in seconds since the epoch
SIGNED_IN_AT = "twinportal_signed_in_at"


def _now() -> float:
    return time.time()


def session_signed_in_record(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: note when this session signed in."""
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = _now()


def session_expired(request: HttpRequest) -> bool:
    """Whether the signed-in session of ``request`` is past its cap (a session without a sign-in
    time, which this code did not start, counts as past it)."""
    signed_in_at = request.session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int | float):
        return True
    return _now() - signed_in_at >= settings.TWINPORTAL_SESSION_MAX_SECONDS


class SessionCapMiddleware:
    """Ends a session past its cap: the page asks to sign in again, the API answers 401.

    Placed after ``AuthenticationMiddleware``. Only sessions are capped here; API tokens carry
    their own expiry.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and session_expired(request):
            logout(request)
            if not request.path.startswith("/api/"):
                return redirect_to_login(request.get_full_path())
            # under /api/ the request goes on without a user: DRF answers 401
        return self.get_response(request)
