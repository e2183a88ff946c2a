"""Signing in: the password, then, for staff, the code of their authenticator app (enrolling one
first if they have none). Clinicians are signed in after their password."""

from __future__ import annotations

from axes.helpers import get_lockout_response
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from signin.forms import CodeForm
from signin.selectors import (
    PendingSignIn,
    second_factor_required,
    signin_locked,
    signin_pending_get,
    totp_devices_confirmed,
)
from signin.services import (
    signin_complete,
    signin_pending_clear,
    signin_pending_start,
    signin_refused_while_locked,
    totp_check,
    totp_confirm,
    totp_enrolment_device,
    totp_key_base32,
    totp_qr_svg,
)


class SignInView(LoginView):
    """Django's login view (django-axes counts its failures), stopping staff before the session
    starts: their sign-in continues at the code step."""

    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if not second_factor_required(user):
            signin_pending_clear(request=self.request)
            return super().form_valid(form)
        signin_pending_start(request=self.request, user=user, next_url=self.get_redirect_url())
        if totp_devices_confirmed(user).exists():
            return redirect("login-code")
        return redirect("login-enrol")


def _code_step(
    request: HttpRequest,
    pending: PendingSignIn,
    devices: QuerySet[TOTPDevice],
    *,
    template: str,
    context: dict[str, object],
    enrolling: bool,
) -> HttpResponse:
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if signin_locked(request=request, user=pending.user):
            signin_refused_while_locked(request=request, user=pending.user)
            locked: HttpResponse = get_lockout_response(
                request, None, {"username": pending.user.username}
            )
            return locked
        if form.is_valid():
            check = totp_check(
                request=request, user=pending.user, code=form.cleaned_data["code"], devices=devices
            )
            if check.device is not None:
                if enrolling:
                    totp_confirm(device=check.device)
                signin_complete(request=request, pending=pending, device=check.device)
                return redirect(pending.next_url or reverse("admin:index"))
            if check.wait_seconds:
                seconds = "second" if check.wait_seconds == 1 else "seconds"
                form.add_error(
                    "code",
                    f"Too many wrong codes: wait {check.wait_seconds} {seconds}, then enter the "
                    "code your app shows.",
                )
            else:
                form.add_error("code", "That code is not right, or has already been used.")
    return render(request, template, {**context, "form": form, "pending": pending})


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def code_view(request: HttpRequest) -> HttpResponse:
    """Step two for staff with an authenticator app: the 6-digit code."""
    pending = signin_pending_get(request)
    if pending is None:
        return redirect("login")
    devices = totp_devices_confirmed(pending.user)
    if not devices.exists():
        return redirect("login-enrol")
    return _code_step(
        request,
        pending,
        devices,
        template="registration/login_code.html",
        context={},
        enrolling=False,
    )


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def enrol_view(request: HttpRequest) -> HttpResponse:
    """Step two for staff without an authenticator app yet: scan the key, then confirm it with a
    code before it counts."""
    pending = signin_pending_get(request)
    if pending is None:
        return redirect("login")
    if totp_devices_confirmed(pending.user).exists():
        return redirect("login-code")
    device = totp_enrolment_device(request=request, pending=pending)
    return _code_step(
        request,
        pending,
        TOTPDevice.objects.filter(pk=device.pk),
        template="registration/login_enrol.html",
        context={"qr_svg": totp_qr_svg(device), "key": totp_key_base32(device)},
        enrolling=True,
    )
