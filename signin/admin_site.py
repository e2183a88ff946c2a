"""The admin site for data managers and administrators: staff who signed in with their second
factor (django-otp's ``OTPAdminSite``), and nobody else.

It has no sign-in form of its own: its login address sends people to the site's sign-in (password,
then code), so the lockout and the second factor cannot be gone around through the admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.admin import OTPAdminSite


class TwinPortalAdminSite(OTPAdminSite):  # type: ignore[misc]  # django-otp ships no type information
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = ""
        next_url = next_url or reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return redirect(next_url)
        if not request.user.is_authenticated:
            return redirect_to_login(next_url, reverse("login"))
        # signed in, but a clinician, or staff whose session has no verified second factor
        return render(
            request,
            "registration/admin_refused.html",
            {"staff": request.user.is_staff},
            status=403,
        )
