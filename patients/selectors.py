"""Reads of patient data. Every query for patients starts from :func:`patients_visible_to`, which
scopes them to the caller's care teams; no view may build its own patient queryset."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from audit import recorder
from audit import selectors as audit_selectors
from patients import coding
from patients.models import (
    ClinicalNote,
    Condition,
    Medication,
    NoteSummary,
    Observation,
    Patient,
)
from patients.twin_inputs import MedicationPeriod, medication_exposures


def patient_ids_visible_to(user: User) -> QuerySet[Any]:
    """Ids of the patients on any care team the user belongs to, as a subquery for ``pk__in``
    (empty for a user signed out or disabled)."""
    memberships = Patient.care_teams.through.objects
    if not user.is_authenticated or not user.is_active:
        return memberships.none().values("patient_id")
    return memberships.filter(careteam__members=user).values("patient_id")


def patients_visible_to(user: User) -> QuerySet[Patient]:
    """Patients on any care team the user belongs to; nobody else (administrators included)."""
    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    return Patient.objects.filter(pk__in=patient_ids_visible_to(user))


def patient_get(*, user: User, patient_id: int) -> Patient:
    """One patient the user may see, or ``Patient.DoesNotExist`` (which views turn into 404).

    The one place a single patient's access is resolved: through the care teams, else through
    the user's emergency access in its window (flagged). Every outcome is audited, denials too.
    """
    try:
        patient = patients_visible_to(user).get(pk=patient_id)
    except Patient.DoesNotExist:
        if not (
            user.is_authenticated
            and user.is_active
            and audit_selectors.emergency_access_active(user=user, patient_id=patient_id)
        ):
            recorder.patient_denied(user=_actor(user), patient_id=patient_id)
            raise
        patient = Patient.objects.get(pk=patient_id)
        recorder.patient_accessed(user=user, patient_id=patient.pk, break_glass=True)
        return patient
    recorder.patient_accessed(user=user, patient_id=patient.pk)
    return patient


def _actor(user: User) -> User | None:
    return user if user.is_authenticated else None


def patient_list(*, user: User, search: str = "") -> QuerySet[Patient]:
    """The patient list page: visible patients with their conditions of interest and last visit."""
    qs = patients_visible_to(user)
    if search:
        qs = qs.filter(
            Q(family_name__icontains=search)
            | Q(given_name__icontains=search)
            | Q(mrn__iexact=search)
        )
    twin_codes = set().union(
        *(
            coding.CONDITION_GROUPS[g]
            for g in ("hypertension", "type2_diabetes", "prediabetes", "ckd")
        )
    )
    return (
        qs.annotate(
            last_seen=Max("observations__effective_at"), note_count=Count("notes", distinct=True)
        )
        .prefetch_related(
            Prefetch(
                "conditions",
                queryset=Condition.objects.filter(code__in=twin_codes, abatement_at__isnull=True),
                to_attr="twin_conditions",
            )
        )
        .order_by("family_name", "given_name", "pk")
    )


def observations_for(*, patient: Patient, code: str) -> QuerySet[Observation]:
    """All readings of one LOINC code for one patient, oldest first (one indexed query; a BP
    panel's systolic and diastolic components are rows under their own codes)."""
    return Observation.objects.filter(patient=patient, code=code).order_by("effective_at", "pk")


def medications_for(*, patient: Patient) -> QuerySet[Medication]:
    return Medication.objects.filter(patient=patient).order_by("-start", "-authored_on", "pk")


def treatment_classes_taken(*, patient: Patient, now: dt.datetime | None = None) -> list[str]:
    """The drug classes the twin counts as taken ``now`` (a what-if may stop them), read from the
    prescriptions exactly as the twin reads them (``twin_inputs.medication_exposures``)."""
    now = now or timezone.now()
    periods = [
        MedicationPeriod(*row)
        for row in Medication.objects.filter(patient=patient).values_list(
            "name", "status", "start", "stop", "authored_on"
        )
    ]
    running = {
        e.treatment
        for e in medication_exposures(periods, now)
        if e.start <= 0.0 and (e.stop is None or e.stop > 0.0)
    }
    return sorted(running)


def notes_for(*, patient: Patient) -> QuerySet[ClinicalNote]:
    """Current versions only: a note replaced by an amendment is reached through the amendment."""
    return ClinicalNote.objects.filter(patient=patient, next_version__isnull=True).order_by(
        "-written_at", "pk"
    )


def notes_visible_to(*, user: User, patient: Patient) -> QuerySet[ClinicalNote]:
    """Every version of the patient's notes the user may read: signed notes, and drafts only to
    their author (the patient itself comes from :func:`patient_get`)."""
    return ClinicalNote.objects.filter(patient=patient).exclude(
        Q(status=ClinicalNote.Status.DRAFT) & ~Q(author=user)
    )


def note_get(*, user: User, patient_id: int, note_id: int) -> ClinicalNote:
    """One note (any version) of a patient the user may see: ``Patient.DoesNotExist`` or
    ``ClinicalNote.DoesNotExist`` otherwise; drafts only to their author."""
    patient = patient_get(user=user, patient_id=patient_id)
    return (
        notes_visible_to(user=user, patient=patient)
        .select_related("patient", "previous_version")
        .get(pk=note_id)
    )


def current_notes_visible_to(*, user: User, patient: Patient) -> QuerySet[ClinicalNote]:
    """The current versions of :func:`notes_visible_to`, newest first (``notes_for``'s order)."""
    return notes_for(patient=patient).exclude(Q(status=ClinicalNote.Status.DRAFT) & ~Q(author=user))


def note_summary_for(*, patient: Patient) -> NoteSummary | None:
    """The patient's cross-note summary row (whatever its state), if one was ever asked for."""
    return NoteSummary.objects.filter(patient=patient).first()


def can_manage_records(user: User) -> bool:
    """Data managers and administrators manage all records in the admin site; clinicians none."""
    return bool(
        user.is_active and (user.is_superuser or user.role in ("data_manager", "administrator"))
    )


def patients_for_data_management(user: User) -> QuerySet[Patient]:
    """What the admin site shows: all patients to data managers and administrators, none to others."""
    return Patient.objects.all() if can_manage_records(user) else Patient.objects.none()
