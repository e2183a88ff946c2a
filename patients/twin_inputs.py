"""Build the twin's plain-data view of a patient (``models_engine.history.PatientHistory``).

Pure Python: the same builder serves records read from the database and records parsed straight
from a FHIR bundle (the backtest), so both paths see a patient identically.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models_engine.history import PatientHistory, Series, Sex, TreatmentExposure
from patients import coding

#: A stopped prescription without an end date (Synthea 2.x writes none) is assumed to have run
#: until the same ingredient was prescribed again, or for this long: a year's supply, an assumption.
ASSUMED_COURSE_WITHOUT_END = dt.timedelta(days=365)
#: FHIR R4 ObservationStatus codes that carry no usable result: nothing measured yet
#: (registered), aborted (cancelled) or recorded by mistake (entered-in-error). The twin never
#: calibrates on them.
NOT_A_RESULT = frozenset({"registered", "cancelled", "entered-in-error"})
#: Condition verification statuses that mean the patient does not have the condition.
NOT_A_DIAGNOSIS = frozenset({"refuted", "entered-in-error"})

TWIN_VARIABLES = (
    "sbp",
    "dbp",
    "hba1c",
    "glucose",
    "weight",
    "height",
    "bmi",
    "total_chol",
    "ldl",
    "hdl",
    "triglycerides",
    "egfr",
    "uacr",
)
SMOKER_CODE = "72166-2"


@dataclass(frozen=True)
class ObservationPoint:
    code: str
    effective_at: dt.datetime
    value: float | None
    value_code: str = ""
    status: str = "final"
    #: why the records flag the value as implausible (``coding.implausible_reason``), "" if not
    implausible_reason: str = ""


@dataclass(frozen=True)
class FlaggedReadings:
    """Which readings of one variable the records flag as implausible, for the fit to leave out.

    Both are aligned with ``history.observations[variable].t`` and ``.y`` (same length, same order):
    ``mask[i]`` is true when reading ``i`` is flagged and ``reasons[i]`` says why ("" when not).
    The readings stay in the history; leaving them out, and saying so, is the engine's decision.
    """

    mask: npt.NDArray[np.bool_]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MedicationPeriod:
    name: str
    status: str
    start: dt.datetime | None
    stop: dt.datetime | None
    authored_on: dt.datetime | None


@dataclass(frozen=True)
class ConditionSpan:
    code: str
    onset_at: dt.datetime | None
    abatement_at: dt.datetime | None
    clinical_status: str
    verification_status: str = ""


def _days(when: dt.datetime, reference: dt.datetime) -> float:
    return (when - reference).total_seconds() / 86400.0


def medication_exposures(
    medications: Iterable[MedicationPeriod], reference: dt.datetime
) -> tuple[TreatmentExposure, ...]:
    """One exposure per ingredient per prescription, with inferred ends for open stopped orders."""
    rows: list[tuple[str, str | None, float, dt.datetime, dt.datetime | None, str]] = []
    for med in medications:
        start = med.start or med.authored_on
        if start is None:
            continue
        for cls in coding.classify_medication(med.name):
            rows.append(
                (
                    cls.ingredient,
                    cls.statin_intensity or None,
                    cls.dose_multiple or 1.0,
                    start,
                    med.stop,
                    med.status,
                )
            )
    rows.sort(key=lambda r: (r[0], r[3]))
    exposures: list[TreatmentExposure] = []
    by_ingredient: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_ingredient[row[0]].append(i)
    for indices in by_ingredient.values():
        for pos, i in enumerate(indices):
            ingredient, intensity, multiple, start, stop, status = rows[i]
            if stop is None and status in ("stopped", "completed", "cancelled"):
                following = rows[indices[pos + 1]][3] if pos + 1 < len(indices) else None
                stop = (
                    min(following, start + ASSUMED_COURSE_WITHOUT_END)
                    if following
                    else start + ASSUMED_COURSE_WITHOUT_END
                )
            if status == "entered-in-error":
                continue
            treatment = next(c.treatment_class for c in coding.classify_medication(ingredient))
            exposures.append(
                TreatmentExposure(
                    treatment=treatment,
                    start=_days(start, reference),
                    stop=_days(stop, reference) if stop else None,
                    dose=float(multiple),
                    intensity=intensity,
                )
            )
    exposures.sort(key=lambda e: e.start)
    return tuple(exposures)


def build_history(
    *,
    patient_id: str,
    sex: str,
    birth_date: dt.date,
    observations: Iterable[ObservationPoint],
    medications: Iterable[MedicationPeriod],
    conditions: Iterable[ConditionSpan],
    race: str = "",
    reference: dt.datetime | None = None,
    cutoff: dt.datetime | None = None,
) -> PatientHistory:
    """Assemble a :class:`PatientHistory`; data after ``cutoff`` (if given) is left out.

    ``reference`` (t = 0) defaults to the last observation kept.
    """
    history, _flags = build_history_and_flags(
        patient_id=patient_id,
        sex=sex,
        birth_date=birth_date,
        observations=observations,
        medications=medications,
        conditions=conditions,
        race=race,
        reference=reference,
        cutoff=cutoff,
    )
    return history


def build_history_and_flags(
    *,
    patient_id: str,
    sex: str,
    birth_date: dt.date,
    observations: Iterable[ObservationPoint],
    medications: Iterable[MedicationPeriod],
    conditions: Iterable[ConditionSpan],
    race: str = "",
    reference: dt.datetime | None = None,
    cutoff: dt.datetime | None = None,
) -> tuple[PatientHistory, dict[str, FlaggedReadings]]:
    """:func:`build_history` plus, per variable with any flagged reading, which ones are flagged.

    Variables without a flagged reading are absent from the second value.
    """
    points = [
        o
        for o in observations
        if (cutoff is None or o.effective_at <= cutoff) and o.status not in NOT_A_RESULT
    ]
    if reference is None:
        times = [o.effective_at for o in points]
        reference = max(times) if times else (cutoff or dt.datetime.now(dt.UTC))
    series: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    smoker_status: tuple[dt.datetime, bool] | None = None
    for o in points:
        if o.code == SMOKER_CODE:
            is_smoker = o.value_code in coding.CONDITION_GROUPS["smoker"]
            if smoker_status is None or o.effective_at >= smoker_status[0]:
                smoker_status = (o.effective_at, is_smoker)
            continue
        variable = coding.VARIABLE_BY_CODE.get(o.code)
        if variable is None or variable.key not in TWIN_VARIABLES or o.value is None:
            continue
        series[variable.key].append(
            (_days(o.effective_at, reference), float(o.value), o.implausible_reason)
        )
    observed: dict[str, Series] = {}
    flags: dict[str, FlaggedReadings] = {}
    for key, values in series.items():
        values.sort()
        arr = np.asarray([(t, y) for t, y, _reason in values], dtype=np.float64)
        observed[key] = Series(t=arr[:, 0].copy(), y=arr[:, 1].copy())
        reasons = tuple(reason for _t, _y, reason in values)
        if any(reasons):
            flags[key] = FlaggedReadings(np.array([bool(r) for r in reasons]), reasons)
    history = assemble_history(
        patient_id=patient_id,
        sex=sex,
        birth_date=birth_date,
        observed=observed,
        smoker=bool(smoker_status and smoker_status[1]),
        medications=medications,
        conditions=conditions,
        race=race,
        reference=reference,
        cutoff=cutoff,
    )
    return history, flags


def assemble_history(
    *,
    patient_id: str,
    sex: str,
    birth_date: dt.date,
    observed: dict[str, Series],
    smoker: bool,
    medications: Iterable[MedicationPeriod],
    conditions: Iterable[ConditionSpan],
    race: str,
    reference: dt.datetime,
    cutoff: dt.datetime | None = None,
) -> PatientHistory:
    """A :class:`PatientHistory` from series already built (``build_history_and_flags`` builds them
    from observation points, ``twins.selectors.twin_inputs_for`` from a batch's columns): the
    diagnoses, courses and the rest are read here, the same way for both."""
    diabetes = False
    for c in conditions:
        if c.verification_status in NOT_A_DIAGNOSIS:
            continue
        if c.code in coding.CONDITION_GROUPS["type2_diabetes"]:
            began = c.onset_at is None or c.onset_at <= reference
            ended = c.abatement_at is not None and c.abatement_at <= reference
            if (
                began
                and not ended
                and c.clinical_status not in ("resolved", "inactive", "remission")
            ):
                diabetes = True
    meds = [
        m
        for m in medications
        if cutoff is None or (m.start or m.authored_on or reference) <= cutoff
    ]
    normalized_sex: Sex = "female" if sex == "female" else "male"
    return PatientHistory(
        patient_id=patient_id,
        sex=normalized_sex,
        birth_date=birth_date,
        reference_date=reference.date(),
        observations=observed,
        treatments=medication_exposures(meds, reference),
        smoker=smoker,
        diabetes=diabetes,
        race=race.lower() or None,
    )
