"""Reads for the twin: stored records to ``PatientHistory`` in bulk, and what is due for a recompute.

``twin_inputs_for`` reads a whole batch of patients with four queries (patients, observations,
medications, conditions) whatever the batch size. Its observations are sorted and grouped as
columns of the whole batch, the rule for each row being that of ``patients.twin_inputs.
build_history`` (which the FHIR backtest uses; a test holds the two to the same histories), and
each history is finished by the same ``assemble_history``, so both paths see a patient alike.
Callers pass batches of bounded size (a nightly chunk), which bounds memory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import User
from models_engine.history import PatientHistory, Series
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
    assemble_history,
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


def twin_inputs_for(
    patient_ids: Sequence[int],
    *,
    reference: dt.datetime,
    readings_after: Mapping[int, dt.datetime] | None = None,
) -> list[TwinInput]:
    """Histories of these patients as of ``reference`` (t = 0), in the order of ``patient_ids``.

    Four queries for the whole batch. Rows dated after ``reference`` are left out. Unknown ids are
    skipped. Each input's ``readings`` are its stored readings of twin variables, for checking
    against an earlier forecast; with ``readings_after`` only those after the patient's time there
    (and none for a patient it does not name), since building every reading of a batch costs more
    than the check needs.

    The observations are handled as columns of the whole batch (one sort, no object per row);
    ``patients.twin_inputs.assemble_history`` then builds each history as the FHIR path does.
    """
    ids = list(dict.fromkeys(patient_ids))
    patients = {
        row["pk"]: row
        for row in Patient.objects.filter(pk__in=ids).values(
            "pk", "sex", "birth_date", "race", "deceased_at"
        )
    }
    # times as epoch seconds: parsing a hundred thousand timestamp strings per batch cost more
    # than the rest of the read
    rows = list(
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
    )
    columns = _ObservationColumns.of(rows, reference)
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
        a, b = columns.span.get(pid, (0, 0))
        digest = hashlib.sha256(f"{p['sex']}|{p['birth_date']}|{p['race']}\n".encode())
        digest.update(columns.digest_text(a, b).encode())
        med_rows = [MedicationPeriod(*m) for m in meds.get(pid, [])]
        for m in med_rows:
            digest.update(f"m|{m.name}|{m.status}|{m.start}|{m.stop}|{m.authored_on}\n".encode())
        cond_rows = [ConditionSpan(*c) for c in conds.get(pid, [])]
        for c in cond_rows:
            digest.update(
                f"c|{c.code}|{c.onset_at}|{c.abatement_at}|{c.clinical_status}|{c.verification_status}\n".encode()
            )
        observed, flags = columns.series(pid)
        history = assemble_history(
            patient_id=str(pid),
            sex=p["sex"],
            birth_date=p["birth_date"],
            observed=observed,
            smoker=columns.smoker(a, b),
            medications=med_rows,
            conditions=cond_rows,
            race=p["race"],
            reference=reference,
        )
        if readings_after is None:
            readings = columns.readings(a, b)
        elif pid in readings_after:
            readings = columns.readings(a, b, after=readings_after[pid])
        else:
            readings = ()
        out.append(
            TwinInput(
                patient_id=pid,
                history=history,
                inputs_sha256=digest.hexdigest(),
                data_until=columns.time(b - 1) if b > a else None,
                readings=readings,
                deceased=p["deceased_at"] is not None and p["deceased_at"] <= reference,
                flags=flags,
            )
        )
    return out


_ObservationRow = tuple[int, int, str, float, float | None, str, str, str]


def _spans(pids: npt.NDArray[np.int64]) -> dict[int, tuple[int, int]]:
    """Where each patient's run of ``pids`` (grouped) starts and stops."""
    if pids.size == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
    stops = np.r_[starts[1:], pids.size]
    return {int(pids[a]): (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}


@dataclass(frozen=True)
class _ObservationColumns:
    """A batch's observation rows (ordered by patient, time and id) as columns.

    What ``build_history_and_flags`` does row by row (leave out rows that are no result or have no
    value, group by variable, sort by time and value, note flagged readings, take the latest
    smoking status) is done here with one sort of the batch; each patient is a slice of it.
    """

    rows: Sequence[_ObservationRow]
    #: rows of each patient: [start, stop)
    span: dict[int, tuple[int, int]]
    #: the usable rows (results with a value, of a twin variable), by patient, variable, time and
    #: value, and each patient's part of them: [start, stop)
    order: npt.NDArray[np.intp]
    order_span: dict[int, tuple[int, int]]
    #: per row: twin variable (index into TWIN_VARIABLES, -1 for none), days from the reference,
    #: value (NaN for none) and whether it is a result at all (not registered, cancelled or in error)
    key: npt.NDArray[np.intp]
    days: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    result: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, rows: Sequence[_ObservationRow], reference: dt.datetime) -> _ObservationColumns:
        n = len(rows)
        if n == 0:
            none = np.zeros(0, dtype=np.intp)
            return cls(rows, {}, none, {}, none, np.zeros(0), np.zeros(0), np.zeros(0, bool))
        pid_col, _ids, code_col, epoch_col, value_col, _vc, status_col, _r = zip(*rows, strict=True)
        pids = np.array(pid_col, dtype=np.int64)
        code_key = {
            code: TWIN_VARIABLES.index(v.key)
            if (v := coding.VARIABLE_BY_CODE.get(code)) is not None and v.key in TWIN_VARIABLES
            else -1
            for code in set(code_col)
        }
        key = np.array([code_key[c] for c in code_col], dtype=np.intp)
        values = np.array(value_col, dtype=np.float64)  # None becomes NaN
        result = np.array([st not in NOT_A_RESULT for st in status_col], dtype=bool)
        days = (np.array(epoch_col, dtype=np.float64) - reference.timestamp()) / 86400.0
        usable = result & (key >= 0) & ~np.isnan(values)
        # within a patient: by variable, then time, then value (as the row-by-row build sorts)
        order = np.lexsort((values, days, key, pids))
        order = order[usable[order]]
        return cls(rows, _spans(pids), order, _spans(pids[order]), key, days, values, result)

    def digest_text(self, a: int, b: int) -> str:
        """The rows' part of the inputs digest (one line per row, flags only where set)."""
        return "".join(
            f"o|{code}|{epoch!r}|{value!r}|{value_code}|{status}{'|' + reason if reason else ''}\n"
            for _pid, _id, code, epoch, value, value_code, status, reason in self.rows[a:b]
        )

    def series(self, pid: int) -> tuple[dict[str, Series], dict[str, FlaggedReadings]]:
        """The patient's series of each twin variable, and which readings are flagged."""
        lo, hi = self.order_span.get(pid, (0, 0))
        rows = self.order[lo:hi]
        observed: dict[str, Series] = {}
        flags: dict[str, FlaggedReadings] = {}
        keys = self.key[rows]
        cuts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True]) if rows.size else ()
        for start, stop in itertools.pairwise(int(c) for c in cuts):
            group = rows[start:stop]
            name = TWIN_VARIABLES[int(keys[start])]
            observed[name] = Series(t=self.days[group], y=self.values[group])
            reasons = tuple(self.rows[i][7] for i in group)
            if any(reasons):
                flags[name] = FlaggedReadings(np.array([bool(r) for r in reasons]), reasons)
        return observed, flags

    def smoker(self, a: int, b: int) -> bool:
        """The latest smoking status among the rows (never-smoker without one)."""
        for i in range(b - 1, a - 1, -1):
            _pid, _id, code, _e, _v, value_code, _st, _r = self.rows[i]
            if code == SMOKER_CODE and self.result[i]:
                return value_code in coding.CONDITION_GROUPS["smoker"]
        return False

    def time(self, i: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.rows[i][3], dt.UTC)

    def readings(self, a: int, b: int, *, after: dt.datetime | None = None) -> tuple[Reading, ...]:
        """The rows' readings of any twin variable (results with a value), after ``after``."""
        # a second's margin: the caller compares the exact times again
        since = -math.inf if after is None else after.timestamp() - 1.0
        out: list[Reading] = []
        for i in range(a, b):
            _pid, obs_id, code, epoch, value, _vc, status, _r = self.rows[i]
            if epoch <= since or value is None or status in NOT_A_RESULT:
                continue
            variable = coding.VARIABLE_BY_CODE.get(code)
            if variable is not None:
                out.append(Reading(obs_id, variable.key, self.time(i), float(value)))
        return tuple(out)


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
    """The latest snapshot of each patient that has one (one query), without its calibration and
    notes, which a recompute never reads back."""
    states = (
        TwinState.objects.filter(patient_id__in=list(patient_ids), latest__isnull=False)
        .select_related("latest")
        .defer("latest__calibration", "latest__notes")
    )
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
