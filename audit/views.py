"""The emergency access page: a clinician outside a patient's care teams asks for access with a
reason. Thin: parse, call the service, redirect to the patient's twin page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import User
from audit import selectors, services
from audit.forms import EmergencyAccessForm
from patients.models import Patient


@login_required
@require_http_methods(["GET", "POST"])
def emergency_access(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    raw_patient = request.GET.get("patient", "")
    initial = {"patient": int(raw_patient)} if raw_patient.isdigit() else None
    form = EmergencyAccessForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            patient = selectors.patient_for_emergency_access(
                patient_id=form.cleaned_data["patient"], mrn=form.cleaned_data["mrn"]
            )
            grant = services.emergency_access_grant(
                user=request.user,
                patient=patient,
                reason=form.cleaned_data["reason"],
                request_id=getattr(request, "request_id", ""),
                ip=request.META.get("REMOTE_ADDR") or None,
            )
        except Patient.DoesNotExist:
            form.add_error(None, "No patient has this record number or MRN.")
        except services.EmergencyAccessRefused as exc:
            form.add_error(None, f"Not granted: {exc}.")
        else:
            until = timezone.localtime(grant.expires_at).strftime("%H:%M")
            messages.warning(
                request,
                f"Emergency access until {until}. Every page you open is recorded and the "
                "privacy officer has been told.",
            )
            return redirect("patients:twin", patient_id=patient.pk)
    return render(request, "audit/emergency_access.html", {"form": form})
