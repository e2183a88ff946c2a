"""Reads for the twin: stored records to ``PatientHistory`` in bulk, and what is due for a recompute.

``twin_inputs_for`` reads a whole batch of patients with four queries (patients, observations,
medications, conditions) whatever the batch size, and builds each history with the same
``patients.twin_inputs.build_history`` the FHIR backtest uses, so both paths see a patient alike.
Callers pass batches of bounded size (a nightly chunk), which bounds memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import User
from models_engine.history import PatientHistory
from patients import coding
from patients.models import Condition, Medication, Observation, Patient
from patients.selectors import patient_get, patients_visible_to
from patients.twin_inputs import (
    NOT_A_RESULT,
    SMOKER_CODE,
    TWIN_VARIABLES,
    ConditionSpan,
    FlaggedReadings,
    MedicationPeriod,
    ObservationPoint,
    build_history_and_flags,
)
from twins.models import PendingRecalibration, TwinAlert, TwinSnapshot, TwinState, WhatIfRun

#: LOINC codes the twin reads: its variables and the smoking status.
TWIN_CODES: tuple[str, ...] = tuple(
    sorted(
        {code for key in TWIN_VARIABLES for code in coding.VARIABLE_BY_KEY[key].codes}
        | {SMOKER_CODE}
    )
)


#: An observation's time as epoch seconds, per database (PostgreSQL in production, SQLite in the demo).
_EPOCH_SQL = {
    "postgresql": "EXTRACT(EPOCH FROM patients_observation.effective_at)::float8",
    "sqlite": "(julianday(patients_observation.effective_at) - 2440587.5) * 86400.0",
}


@dataclass(frozen=True)
class Reading:
    """One stored reading of a twin variable, for checking it against an earlier forecast."""

    observation_id: int
    variable: str
    effective_at: dt.datetime
    value: float


@dataclass(frozen=True)
class TwinInput:
    """A patient's history as of ``reference`` plus what identifies the rows it came from."""

    patient_id: int
    history: PatientHistory
    inputs_sha256: str
    data_until: dt.datetime | None
    readings: tuple[Reading, ...]
    deceased: bool = False
    #: per variable with any, the readings flagged as implausible (aligned with ``history``)
    flags: dict[str, FlaggedReadings] = field(default_factory=dict)


def twin_inputs_for(patient_ids: Sequence[int], *, reference: dt.datetime) -> list[TwinInput]:
    """Histories of these patients as of ``reference`` (t = 0), in the order of ``patient_ids``.

    Four queries for the whole batch. Rows dated after ``reference`` are left out. Unknown ids are
    skipped.
    """
    ids = list(dict.fromkeys(patient_ids))
    patients = {
        row["pk"]: row
        for row in Patient.objects.filter(pk__in=ids).values(
            "pk", "sex", "birth_date", "race", "deceased_at"
        )
    }
    obs: dict[int, list[tuple[int, str, dt.datetime, float | None, str, str, str]]]
    obs = defaultdict(list)
    utc = dt.UTC
    from_epoch = dt.datetime.fromtimestamp
    # times as epoch seconds: parsing a hundred thousand timestamp strings per batch cost more
    # than the rest of the read
    for pid, obs_id, code, epoch, value, value_code, status, reason in (
        Observation.objects.filter(
            patient_id__in=ids, code__in=TWIN_CODES, effective_at__lte=reference
        )
        .annotate(epoch=RawSQL(_EPOCH_SQL[connection.vendor], ()))
        .order_by("patient_id", "effective_at", "pk")
        .values_list(
            "patient_id",
            "pk",
            "code",
            "epoch",
            "value",
            "value_code",
            "status",
            "implausible_reason",
        )
        .iterator(chunk_size=20_000)
    ):
        obs[pid].append((obs_id, code, from_epoch(epoch, utc), value, value_code, status, reason))
    meds: dict[
        int, list[tuple[str, str, dt.datetime | None, dt.datetime | None, dt.datetime | None]]
    ]
    meds = defaultdict(list)
    for med in (
        Medication.objects.filter(patient_id__in=ids)
        .order_by("patient_id", "pk")
        .values_list("patient_id", "name", "status", "start", "stop", "authored_on")
    ):
        meds[med[0]].append(med[1:])
    conds: dict[int, list[tuple[str, dt.datetime | None, dt.datetime | None, str, str]]] = (
        defaultdict(list)
    )
    for cond in (
        Condition.objects.filter(patient_id__in=ids)
        .order_by("patient_id", "pk")
        .values_list(
            "patient_id",
            "code",
            "onset_at",
            "abatement_at",
            "clinical_status",
            "verification_status",
        )
    ):
        conds[cond[0]].append(cond[1:])

    out: list[TwinInput] = []
    for pid in ids:
        p = patients.get(pid)
        if p is None:
            continue
        rows = obs.get(pid, [])
        digest = hashlib.sha256(f"{p['sex']}|{p['birth_date']}|{p['race']}\n".encode())
        points: list[ObservationPoint] = []
        readings: list[Reading] = []
        for obs_id, code, when, value, value_code, status, reason in rows:
            points.append(ObservationPoint(code, when, value, value_code, status, reason))
            # a flag is part of the input only where there is one, so unflagged patients keep
            # the digests they had before flags existed (and are not all refitted)
            flagged = f"|{reason}" if reason else ""
            digest.update(
                f"o|{code}|{when.timestamp()!r}|{value!r}|{value_code}|{status}{flagged}\n".encode()
            )
            variable = coding.VARIABLE_BY_CODE.get(code)
            if variable is not None and value is not None and status not in NOT_A_RESULT:
                readings.append(Reading(obs_id, variable.key, when, float(value)))
        med_rows = [MedicationPeriod(*m) for m in meds.get(pid, [])]
        for m in med_rows:
            digest.update(f"m|{m.name}|{m.status}|{m.start}|{m.stop}|{m.authored_on}\n".encode())
        cond_rows = [ConditionSpan(*c) for c in conds.get(pid, [])]
        for c in cond_rows:
            digest.update(
                f"c|{c.code}|{c.onset_at}|{c.abatement_at}|{c.clinical_status}|{c.verification_status}\n".encode()
            )
        history, flags = build_history_and_flags(
            patient_id=str(pid),
            sex=p["sex"],
            birth_date=p["birth_date"],
            observations=points,
            medications=med_rows,
            conditions=cond_rows,
            race=p["race"],
            reference=reference,
        )
        out.append(
            TwinInput(
                patient_id=pid,
                history=history,
                inputs_sha256=digest.hexdigest(),
                data_until=rows[-1][2] if rows else None,
                readings=tuple(readings),
                deceased=p["deceased_at"] is not None and p["deceased_at"] <= reference,
                flags=flags,
            )
        )
    return out


def patients_due_for_recompute(
    *, now: dt.datetime, stale_after_days: int, model_version: str
) -> QuerySet[Patient]:
    """Patients never fitted, whose record changed since their last fit, whose fit is older than
    ``stale_after_days`` or from another model version (alive patients only)."""
    cutoff = now - dt.timedelta(days=stale_after_days)
    return (
        Patient.objects.filter(deceased_at__isnull=True)
        .filter(
            Q(twin_state__isnull=True)
            | Q(twin_state__last_fit_at__isnull=True)
            | Q(twin_state__last_fit_at__lt=cutoff)
            | Q(twin_state__data_changed_at__gt=F("twin_state__last_fit_at"))
            | ~Q(twin_state__model_version=model_version)
        )
        .order_by("pk")
    )


def latest_snapshots(patient_ids: Iterable[int]) -> dict[int, TwinSnapshot]:
    """The latest snapshot of each patient that has one (one query)."""
    states = TwinState.objects.filter(
        patient_id__in=list(patient_ids), latest__isnull=False
    ).select_related("latest")
    return {s.patient_id: s.latest for s in states if s.latest is not None}


# Reads for clinicians: always through the care-team selector.


def twin_state_for(*, patient: Patient) -> TwinState | None:
    """The patient's twin state with its latest snapshot (the caller has checked access)."""
    return TwinState.objects.filter(patient=patient).select_related("latest").first()


def recalibration_pending(*, patient: Patient) -> bool:
    return PendingRecalibration.objects.filter(patient=patient).exists()


def snapshots_of(*, patient: Patient) -> QuerySet[TwinSnapshot]:
    """Every snapshot of a patient (the caller has checked access), newest first, without bands."""
    return (
        TwinSnapshot.objects.filter(patient=patient)
        .defer("bands", "calibration")
        .order_by("-computed_at", "-pk")
    )


def snapshot_get(*, user: User, patient_id: int, snapshot_id: int) -> TwinSnapshot:
    patient = patient_get(user=user, patient_id=patient_id)
    return TwinSnapshot.objects.get(patient=patient, pk=snapshot_id)


def alerts_for(
    *, user: User, open_only: bool = True, patient_id: int | None = None
) -> QuerySet[TwinAlert]:
    """Alerts of the user's patients (one patient's when given), newest first."""
    qs = TwinAlert.objects.filter(patient__in=patients_visible_to(user))
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if open_only:
        qs = qs.filter(acknowledged_at__isnull=True)
    return qs.select_related("patient", "acknowledged_by").order_by("-created_at", "-pk")


def whatif_get(*, user: User, run_id: int) -> WhatIfRun:
    """A what-if run of a patient the user may see (``WhatIfRun.DoesNotExist`` otherwise); the
    patient's access is resolved (and audited) by ``patient_get``, as for any patient page."""
    run = WhatIfRun.objects.get(pk=run_id)
    try:
        run.patient = patient_get(user=user, patient_id=run.patient_id)
    except Patient.DoesNotExist as exc:
        raise WhatIfRun.DoesNotExist("No such what-if run.") from exc
    return run


def alert_get(*, user: User, alert_id: int) -> TwinAlert:
    """One alert of a patient the user may see (``TwinAlert.DoesNotExist`` otherwise)."""
    alert = TwinAlert.objects.select_related("acknowledged_by").get(pk=alert_id)
    try:
        alert.patient = patient_get(user=user, patient_id=alert.patient_id)
    except Patient.DoesNotExist as exc:
        raise TwinAlert.DoesNotExist("No such alert.") from exc
    return alert
