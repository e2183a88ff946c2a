"""Clinician pages. Thin: parse the request, call one selector, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import User
from patients import selectors

PAGE_SIZE = 50


@login_required
def patient_list(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    search = request.GET.get("q", "").strip()[:100]
    patients = selectors.patient_list(user=request.user, search=search)
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "patients/list.html", {"page": page, "search": search})
