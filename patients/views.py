"""Clinician pages. Thin: parse the request, call one selector or service, render.

Every patient is fetched through the care-team selectors, so a patient outside the clinician's
teams is a 404 on every page. Nothing identifying a patient goes into a URL beyond the record id:
the list's search is posted and kept in the session.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from audit import recorder
from models_engine.treatments import label_for
from patients import forms, page_services, pages, services
from patients.models import ClinicalNote, Patient
from patients.selectors import note_get, patient_get, treatment_classes_taken
from twins import selectors as twin_selectors
from twins import services as twin_services
from twins.models import TaskState, TwinAlert, WhatIfRun

PAGE_SIZE = 50
_LIST_SESSION_KEY = "patient_list_query"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _patient_or_404(request: HttpRequest, patient_id: int) -> Patient:
    try:
        return patient_get(user=_user(request), patient_id=patient_id)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient.") from exc


# My patients


@login_required
@require_http_methods(["GET", "POST"])
def patient_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if "clear" in request.POST:
            request.session.pop(_LIST_SESSION_KEY, None)
            return redirect("patients:list")
        form = forms.PatientListForm(request.POST)
        if form.is_valid():
            request.session[_LIST_SESSION_KEY] = form.cleaned_data
            return redirect("patients:list")
    else:
        form = forms.PatientListForm(request.session.get(_LIST_SESSION_KEY) or None)
    query = form.to_query() if form.is_bound and form.is_valid() else pages.ListQuery()
    ids = pages.patient_ids(user=_user(request), query=query)
    page = Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
    patients = pages.patient_page(user=_user(request), ids=list(page.object_list))
    rows = pages.list_rows(user=_user(request), patients=patients)
    return render(
        request,
        "patients/list.html",
        {"form": form, "query": query, "page": page, "rows": rows, "nav": "patients"},
    )


# The twin page


@login_required
def patient_twin(request: HttpRequest, patient_id: int) -> HttpResponse:
    try:
        data = pages.twin_page(user=_user(request), patient_id=patient_id)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient.") from exc
    return render(request, "patients/twin.html", {"p": data, "patient": data.patient})


# Alerts


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    show_all = request.GET.get("state") == "all"
    alerts = twin_selectors.alerts_for(user=_user(request), open_only=not show_all)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    recorder.patients_listed(user=_user(request), patient_ids=[a.patient_id for a in page])
    return render(
        request,
        "patients/alerts.html",
        {"page": page, "show_all": show_all, "nav": "alerts"},
    )


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = twin_selectors.alert_get(user=_user(request), alert_id=alert_id)
    except TwinAlert.DoesNotExist as exc:
        raise Http404("No such alert.") from exc
    form = forms.AcknowledgeForm(request.POST)
    back = request.POST.get("next") == "patient"
    if not form.is_valid():
        messages.error(request, "Not acknowledged: say why the alert needs nothing more.")
    else:
        try:
            twin_services.alert_acknowledge(
                alert=alert, user=_user(request), reason=form.cleaned_data["reason"]
            )
            messages.success(request, "Alert acknowledged.")
        except ValueError as exc:
            messages.error(request, f"Not acknowledged: {exc}.")
    if back:
        return redirect("patients:twin", patient_id=alert.patient_id)
    return redirect("patients:alerts")


# What-if


@login_required
@require_http_methods(["GET", "POST"])
def whatif_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient_or_404(request, patient_id)
    today = timezone.localdate()
    taking = treatment_classes_taken(patient=patient)
    plan_forms = forms.plan_forms(
        request.POST if request.method == "POST" else None, today=today, taking=taking
    )
    problems: list[str] = []
    if request.method == "POST" and all(f.is_valid() for f in plan_forms):
        plans, problems = forms.plans_from(plan_forms)
        if not problems:
            try:
                run = twin_services.whatif_submit(
                    user=_user(request),
                    patient=patient,
                    plans=plans,
                    name=request.POST.get("name", "").strip(),
                )
            except twin_services.PlanError as exc:
                problems = [f"{p['field']}: {p['message']}" for p in exc.problems]
            else:
                return redirect("patients:whatif", run_id=run.pk)
    return render(
        request,
        "patients/whatif_new.html",
        {
            "patient": patient,
            "plan_forms": plan_forms,
            "problems": problems,
            "saved": pages.whatif_saved(patient=patient),
            "today": today,
            "taking_labels": [label_for(k) for k in taking],
        },
    )


def _run_or_404(request: HttpRequest, run_id: int) -> WhatIfRun:
    try:
        return twin_selectors.whatif_get(user=_user(request), run_id=run_id)
    except WhatIfRun.DoesNotExist as exc:
        raise Http404("No such comparison.") from exc


@login_required
def whatif_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    return render(
        request,
        "patients/whatif.html",
        {
            "run": run,
            "patient": run.patient,
            "comparison": pages.whatif_comparison(run),
            "name_form": forms.WhatIfNameForm(initial={"name": run.name}),
            "print_view": request.GET.get("print") == "1" and run.status == TaskState.SUCCEEDED,
        },
    )


@login_required
def whatif_status(request: HttpRequest, run_id: int) -> JsonResponse:
    """Polled by the page while the comparison runs (no patient data in it)."""
    run = _run_or_404(request, run_id)
    return JsonResponse(
        {
            "status": run.status,
            "done": run.status in (TaskState.SUCCEEDED, TaskState.FAILED),
            "step": pages.whatif_step(run),
        }
    )


@login_required
@require_POST
def whatif_name(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    form = forms.WhatIfNameForm(request.POST)
    if form.is_valid():
        page_services.whatif_name_set(run=run, name=form.cleaned_data["name"])
        messages.success(request, "Comparison saved for the care team.")
    else:
        messages.error(request, "Give the comparison a name to save it.")
    return redirect("patients:whatif", run_id=run.pk)


# Notes


@login_required
def notes(request: HttpRequest, patient_id: int) -> HttpResponse:
    try:
        data = pages.notes_page(user=_user(request), patient_id=patient_id)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient.") from exc
    page_services.note_summary_view_record(
        user=_user(request),
        patient=data.patient,
        computed_at=data.summary.computed_at if data.summary else None,
    )
    return render(request, "patients/notes.html", {"n": data, "patient": data.patient})


def _note_or_404(request: HttpRequest, patient_id: int, note_id: int) -> ClinicalNote:
    try:
        return note_get(user=_user(request), patient_id=patient_id, note_id=note_id)
    except (Patient.DoesNotExist, ClinicalNote.DoesNotExist) as exc:
        raise Http404("No such note.") from exc


def _span(raw: str, length: int) -> tuple[int, int] | None:
    start, _, end = raw.partition("-")
    if not (start.isdigit() and end.isdigit()):
        return None
    a, b = int(start), int(end)
    return (a, b) if 0 <= a < b <= length else None


@login_required
def note_detail(request: HttpRequest, patient_id: int, note_id: int) -> HttpResponse:
    note = _note_or_404(request, patient_id, note_id)
    span = _span(request.GET.get("hl", ""), len(note.text))
    parts: dict[str, Any] = (
        {
            "before": note.text[: span[0]],
            "mark": note.text[span[0] : span[1]],
            "after": note.text[span[1] :],
        }
        if span
        else {"before": note.text, "mark": "", "after": ""}
    )
    return render(
        request,
        "patients/note.html",
        {
            "note": note,
            "patient": note.patient,
            "parts": parts,
            "versions": pages.note_versions(note=note),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def note_write(request: HttpRequest, patient_id: int, note_id: int | None = None) -> HttpResponse:
    """Write a new note or go on with one's own draft: save (also by autosave) or sign."""
    patient = _patient_or_404(request, patient_id)
    draft = _note_or_404(request, patient_id, note_id) if note_id else None
    if draft is not None and draft.is_signed:
        return redirect("patients:note-amend", patient_id=patient.pk, note_id=draft.pk)
    form = forms.NoteForm(
        request.POST or None,
        initial={"title": draft.title, "text": draft.text} if draft else None,
    )
    autosave = request.headers.get("X-Autosave") == "1"
    if request.method == "POST":
        if not form.is_valid():
            if autosave:
                return JsonResponse({"saved": False}, status=400)
        else:
            draft = page_services.note_draft_save(
                patient=patient,
                author=_user(request),
                text=form.cleaned_data["text"],
                title=form.cleaned_data["title"],
                draft=draft,
            )
            if autosave:
                return JsonResponse(
                    {
                        "saved": True,
                        "note_id": draft.pk,
                        "saved_at": timezone.localtime(draft.written_at).strftime("%H:%M:%S"),
                    }
                )
            if "sign" in request.POST:
                services.note_sign(note=draft)
                messages.success(request, "Note signed. The summary is being updated.")
                return redirect("patients:notes", patient_id=patient.pk)
            messages.success(request, "Draft saved.")
            return redirect("patients:note-edit", patient_id=patient.pk, note_id=draft.pk)
    return render(
        request,
        "patients/note_write.html",
        {"patient": patient, "form": form, "draft": draft, "amending": None},
    )


@login_required
@require_http_methods(["GET", "POST"])
def note_amend(request: HttpRequest, patient_id: int, note_id: int) -> HttpResponse:
    note = _note_or_404(request, patient_id, note_id)
    form = forms.NoteForm(request.POST or None, initial={"title": note.title, "text": note.text})
    if request.method == "POST" and form.is_valid():
        try:
            amendment = services.note_amend(
                note=note, text=form.cleaned_data["text"], author=_user(request)
            )
        except ValueError as exc:
            messages.error(request, f"Not amended: {exc}.")
        else:
            messages.success(request, "Amendment signed; the earlier version is kept.")
            return redirect("patients:note", patient_id=patient_id, note_id=amendment.pk)
    return render(
        request,
        "patients/note_write.html",
        {"patient": note.patient, "form": form, "draft": None, "amending": note},
    )
