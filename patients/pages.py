"""Reads behind the clinician's pages: the patient list with its latest figures, and the twin page.

Each page is a fixed number of queries whatever the number of patients or readings: the list
annotates latest readings, risk and open alerts as correlated subqueries on the indexed
``(patient, code, effective_at)`` rows; the twin page reads a patient's twin variables in one
query. Access is always through :func:`patients.selectors.patients_visible_to`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from audit import recorder
from models_engine import treatments
from patients import coding
from patients.models import (
    ClinicalNote,
    Condition,
    Medication,
    NoteSummary,
    NoteSummaryView,
    Observation,
    Patient,
    TaskStatus,
)
from patients.selectors import (
    current_notes_visible_to,
    medications_for,
    note_summary_for,
    patient_get,
    patient_ids_visible_to,
    patients_visible_to,
)
from patients.twin_inputs import NOT_A_RESULT
from twins import selectors as twin_selectors
from twins import services as twin_services
from twins.models import TaskState, TwinAlert, TwinSnapshot, WhatIfRun

# ---------------------------------------------------------------------------------------------
# Units and formats as clinicians write them
# ---------------------------------------------------------------------------------------------

#: Variables drawn on the twin page, top to bottom; blood pressure shares one panel.
CHART_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Blood pressure", ("sbp", "dbp")),
    ("HbA1c", ("hba1c",)),
    ("Fasting glucose", ("glucose",)),
    ("Weight", ("weight",)),
    ("LDL cholesterol", ("ldl",)),
    ("eGFR", ("egfr",)),
)
VARIABLE_LABELS: dict[str, str] = {
    "sbp": "Systolic BP",
    "dbp": "Diastolic BP",
    "hba1c": "HbA1c",
    "glucose": "Fasting glucose",
    "weight": "Weight",
    "ldl": "LDL cholesterol",
    "egfr": "eGFR",
}
#: Units as written on the page (canonical units in the database are UCUM).
DISPLAY_UNITS: dict[str, str] = {
    "sbp": "mmHg",
    "dbp": "mmHg",
    "hba1c": "%",
    "glucose": "mg/dL",
    "weight": "kg",
    "ldl": "mg/dL",
    "egfr": "mL/min/1.73 m²",
}
DECIMALS: dict[str, int] = {"sbp": 0, "dbp": 0, "hba1c": 1, "glucose": 0, "weight": 1, "ldl": 0}
#: The outcome shown as "10-year risk" everywhere: PREVENT total cardiovascular disease.
RISK_OUTCOME = "total_cvd"
RISK_OUTCOME_LABELS: dict[str, str] = {
    "total_cvd": "Total CVD",
    "ascvd": "ASCVD",
    "heart_failure": "Heart failure",
    "chd": "Coronary heart disease",
    "stroke": "Stroke",
}
RISK_INPUT_LABELS: dict[str, str] = {
    "age": "Age (years)",
    "sex": "Sex",
    "sbp": "Systolic BP (mmHg)",
    "total_chol": "Total cholesterol (mg/dL)",
    "hdl": "HDL cholesterol (mg/dL)",
    "egfr": "eGFR (mL/min/1.73 m²)",
    "bmi": "BMI (kg/m²)",
    "diabetes": "Diabetes",
    "smoker": "Current smoker",
    "bp_treated": "On BP treatment",
    "statin": "On a statin",
    "hba1c": "HbA1c (%)",
    "uacr": "UACR (mg/g)",
}
CONDITION_FILTERS: dict[str, str] = {
    "hypertension": "Hypertension",
    "type2_diabetes": "Type 2 diabetes",
    "prediabetes": "Prediabetes",
    "ckd": "Chronic kidney disease",
    "hyperlipidaemia": "Hyperlipidaemia",
}
SORTS: dict[str, tuple[str, ...]] = {
    "name": ("family_name", "given_name", "pk"),
    "risk": ("-risk10_sort", "family_name", "pk"),
    "last_reading": ("-last_reading_sort", "family_name", "pk"),
    "alerts": ("-open_alerts", "family_name", "pk"),
}
SORT_LABELS: dict[str, str] = {
    "name": "Name",
    "risk": "10-year risk, highest first",
    "last_reading": "Last reading, newest first",
    "alerts": "Open alerts, most first",
}
RISK_FILTERS: dict[str, tuple[str, float]] = {
    "intermediate": ("10-year risk 7.5 % or more", 0.075),
    "high": ("10-year risk 20 % or more", 0.20),
}
READING_FILTERS: dict[str, str] = {
    "recent": "A reading in the last 12 months",
    "overdue": "No reading for 12 months or more",
}
#: A change smaller than this between the last two readings is drawn as steady.
TREND_STEADY: dict[str, float] = {"sbp": 3.0, "hba1c": 0.2}


def mid_sentence(label: str) -> str:
    """A label as written inside a sentence: "Thiazide diuretic" → "thiazide diuretic", while
    acronyms ("ACE inhibitor", "SGLT2 inhibitor") keep their capitals."""
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]


def hba1c_mmol_mol(percent: float) -> float:
    """NGSP % to IFCC mmol/mol (master equation, Hoelzel W et al., Clin Chem 2004;50:166)."""
    return (percent - 2.152) / 0.09148


def _codes(key: str) -> tuple[str, ...]:
    return coding.VARIABLE_BY_KEY[key].codes


def _trend(latest: float | None, previous: float | None, steady: float) -> str:
    if latest is None or previous is None:
        return ""
    if latest - previous > steady:
        return "up"
    if previous - latest > steady:
        return "down"
    return "steady"


# ---------------------------------------------------------------------------------------------
# My patients
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    """What the clinician asked the list for (the search term is posted, never in the URL)."""

    search: str = ""
    sort: str = "name"
    condition: str = ""
    risk: str = ""
    reading: str = ""
    alerts_only: bool = False

    @property
    def is_filtered(self) -> bool:
        return bool(self.search or self.condition or self.risk or self.reading or self.alerts_only)


#: Stands for "no reading" where a time is compared or sorted.
_NEVER = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def _latest(code: str, field: str, offset: int = 0) -> Subquery:
    """The newest (or, with ``offset``, an earlier) reading of one code: a backward scan of the
    ``(patient, code, effective_at)`` index that stops at the first usable row."""
    return Subquery(
        Observation.objects.filter(patient=OuterRef("pk"), code=code, value__isnull=False)
        .exclude(status__in=NOT_A_RESULT)
        .order_by("-effective_at")
        .values(field)[offset : offset + 1]
    )


#: Measures shown on the list with their previous reading (for the trend arrow).
LIST_MEASURES: tuple[str, ...] = ("sbp", "dbp", "hba1c")


def _risk10() -> Cast:
    return Cast(
        KeyTextTransform(RISK_OUTCOME, KeyTransform("ten_year", "twin_state__latest__risk")),
        FloatField(),
    )


def _last_reading() -> Greatest:
    """The newest reading of any charted measure: one index probe per code (an "any code"
    lookup would read every row of the patient)."""
    codes = [c for _, vs in CHART_PANELS for v in vs if v != "dbp" for c in _codes(v)]
    return Greatest(*(Coalesce(_latest(c, "effective_at"), Value(_NEVER)) for c in codes))


def _open_alerts() -> Subquery:
    return Subquery(
        TwinAlert.objects.filter(patient=OuterRef("pk"), acknowledged_at__isnull=True)
        .order_by()
        .values("patient")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )


def patient_ids(*, user: User, query: ListQuery) -> QuerySet[Patient, int]:
    """Ids of the visible patients that match, in the order asked. Only what the filter and sort
    need is computed for every patient; the page's figures come from :func:`patient_page`."""
    qs = patients_visible_to(user)
    if query.search:
        qs = qs.filter(
            Q(family_name__icontains=query.search)
            | Q(given_name__icontains=query.search)
            | Q(mrn__iexact=query.search)
        )
    if query.condition in CONDITION_FILTERS:
        qs = qs.filter(
            Exists(
                Condition.objects.filter(
                    patient=OuterRef("pk"),
                    code__in=coding.CONDITION_GROUPS[query.condition],
                    abatement_at__isnull=True,
                )
            )
        )
    if query.risk in RISK_FILTERS or query.sort == "risk":
        qs = qs.annotate(risk10_sort=Coalesce(_risk10(), -1.0, output_field=FloatField()))
        if query.risk in RISK_FILTERS:
            qs = qs.filter(risk10_sort__gte=RISK_FILTERS[query.risk][1])
    if query.reading or query.sort == "last_reading":
        qs = qs.annotate(last_reading_sort=_last_reading())
        year_ago = timezone.now() - dt.timedelta(days=365)
        if query.reading == "recent":
            qs = qs.filter(last_reading_sort__gte=year_ago)
        elif query.reading == "overdue":
            qs = qs.filter(last_reading_sort__lt=year_ago)
    if query.alerts_only or query.sort == "alerts":
        qs = qs.annotate(open_alerts=Coalesce(_open_alerts(), 0))
        if query.alerts_only:
            qs = qs.filter(open_alerts__gt=0)
    sort = query.sort if query.sort in SORTS else "name"
    return qs.order_by(*SORTS[sort]).values_list("pk", flat=True)


@functools.cache
def _page_figures() -> QuerySet[Patient]:
    """The list's figures as annotations, the same for every clinician and page: built once per
    process (resolving some thirty subqueries costs more than running them), then narrowed to a
    page with ``filter`` on a clone. Never evaluated itself."""
    return Patient.objects.annotate(
        **{
            f"m_{v}_{i}_{part}": _latest(code, field, offset)
            for v in LIST_MEASURES
            for i, code in enumerate(_codes(v))
            for part, field, offset in (
                ("value", "value", 0),
                ("prev", "value", 1),
                ("at", "effective_at", 0),
            )
        },
        last_reading_sort=_last_reading(),
        risk10=_risk10(),
        open_alerts=_open_alerts(),
        summary_at=F("note_summary__computed_at"),
    )


def patient_page(*, user: User, ids: list[int]) -> list[Patient]:
    """One page of the list, in the order of ``ids``: latest BP and HbA1c (and the reading
    before), 10-year risk, open alerts, last reading and when the notes summary was computed."""
    if not ids:
        return []
    twin_codes = set().union(*(coding.CONDITION_GROUPS[g] for g in CONDITION_FILTERS))
    qs = (
        _page_figures()
        .filter(pk__in=ids)
        .filter(pk__in=patient_ids_visible_to(user))
        .annotate(
            summary_seen_at=Subquery(
                NoteSummaryView.objects.filter(user=user, patient=OuterRef("pk")).values(
                    "seen_computed_at"
                )[:1]
            ),
        )
        .prefetch_related(
            Prefetch(
                "conditions",
                queryset=Condition.objects.filter(code__in=twin_codes, abatement_at__isnull=True),
                to_attr="twin_conditions",
            )
        )
    )
    by_id: dict[int, Patient] = {p.pk: p for p in qs}
    out = [by_id[i] for i in ids if i in by_id]
    recorder.patients_listed(user=user, patient_ids=[p.pk for p in out])
    for p in out:
        for v in LIST_MEASURES:
            # of a measure's codes, the one read most recently
            times = [getattr(p, f"m_{v}_{i}_at") or _NEVER for i in range(len(_codes(v)))]
            best = times.index(max(times))
            setattr(p, v, getattr(p, f"m_{v}_{best}_value"))
            setattr(p, f"{v}_prev", getattr(p, f"m_{v}_{best}_prev"))
            setattr(p, f"{v}_at", getattr(p, f"m_{v}_{best}_at"))
    return out


#: Month abbreviations as the pages write dates ("5 Dec 2026", Django's ``j M Y``).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_text(at: dt.datetime | None) -> str:
    """A time as the day it fell on in the site's time zone, e.g. "5 Dec 2026" ("" for none)."""
    if at is None:
        return ""
    local = timezone.localtime(at)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def fixed(value: float | None, places: int) -> str:
    """A number rounded half away from zero to ``places`` decimals, as ``floatformat`` writes it
    ("" for none)."""
    if value is None or not math.isfinite(value):
        return ""
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class PatientRow:
    """One line of My patients, its figures already written as the page shows them (the list
    renders fifty of these per request, and template filters cost more than the queries)."""

    patient: Patient
    sbp: float | None
    dbp: float | None
    bp_at: dt.datetime | None
    bp_trend: str
    hba1c: float | None
    hba1c_mmol: float | None
    hba1c_at: dt.datetime | None
    hba1c_trend: str
    risk10: float | None
    open_alerts: int
    last_reading: dt.datetime | None
    summary_changed: bool
    age: int

    @property
    def bp_text(self) -> str:
        return f"{fixed(self.sbp, 0)}/{fixed(self.dbp, 0) or '–'}"

    @property
    def bp_day(self) -> str:
        return day_text(self.bp_at)

    @property
    def hba1c_text(self) -> str:
        return fixed(self.hba1c, 1)

    @property
    def hba1c_mmol_text(self) -> str:
        return fixed(self.hba1c_mmol, 0)

    @property
    def hba1c_day(self) -> str:
        return day_text(self.hba1c_at)

    @property
    def last_reading_day(self) -> str:
        return day_text(self.last_reading)

    @property
    def risk10_pct(self) -> str:
        return "" if self.risk10 is None else f"{self.risk10 * 100:.1f}"

    @property
    def risk_level(self) -> str:
        if self.risk10 is None:
            return ""
        return "high" if self.risk10 >= 0.2 else "mid" if self.risk10 >= 0.075 else "low"


def list_rows(*, user: User, patients: list[Patient]) -> list[PatientRow]:
    """One page of the list as display rows; "summary changed" compares each summary's time with
    the one this clinician last saw (``summary_seen_at``, annotated by :func:`patient_page`)."""
    today = timezone.now()
    rows = []
    for p in patients:
        a: Any = p
        seen_at = a.summary_seen_at
        rows.append(
            PatientRow(
                patient=p,
                sbp=a.sbp,
                dbp=a.dbp,
                bp_at=a.sbp_at,
                bp_trend=_trend(a.sbp, a.sbp_prev, TREND_STEADY["sbp"]),
                hba1c=a.hba1c,
                hba1c_mmol=hba1c_mmol_mol(a.hba1c) if a.hba1c is not None else None,
                hba1c_at=a.hba1c_at,
                hba1c_trend=_trend(a.hba1c, a.hba1c_prev, TREND_STEADY["hba1c"]),
                risk10=a.risk10,
                open_alerts=a.open_alerts or 0,
                last_reading=None if a.last_reading_sort == _NEVER else a.last_reading_sort,
                summary_changed=a.summary_at is not None
                and (seen_at is None or a.summary_at > seen_at),
                age=age_on(p.birth_date, (p.deceased_at or today).date()),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The twin page
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRow:
    variable: str
    label: str
    unit: str
    n: int
    mae_twin: float | None
    mae_locf: float | None
    mae_trend: float | None
    #: The errors as the page shows them, one decimal finer than the readings (an HbA1c error
    #: of 0.26 against 0.25 is not "0.3 worse than 0.3"); "—" for none.
    twin_text: str
    locf_text: str
    #: "better", "worse" or "same" as the shown errors compare; "" when one is missing.
    verdict: str


@dataclass(frozen=True)
class PastPredictionRow:
    label: str
    unit: str
    n: int
    predicted: float
    observed: float
    mean_abs_error: float
    within_80: int


@dataclass
class TwinPage:
    patient: Patient
    age: int
    problems: list[Condition]
    medications: list[Medication]
    status: dict[str, object]
    snapshot: TwinSnapshot | None
    chart: dict[str, Any]
    table: list[dict[str, Any]]
    risk: dict[str, Any] | None
    backtest: list[BacktestRow]
    warnings: list[str]
    past: TwinSnapshot | None
    past_rows: list[PastPredictionRow]
    open_alerts: list[TwinAlert]
    notes: list[str] = field(default_factory=list)

    @property
    def backtest_thin(self) -> bool:
        return bool(self.backtest) and all(b.n < FEW_READINGS for b in self.backtest)


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _fmt(value: float | None, variable: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{DECIMALS.get(variable, 0)}f}"


def _at(reference: dt.datetime, years: float) -> dt.datetime:
    return reference + dt.timedelta(days=years * 365.25)


def _interp(t_years: list[float], values: list[float], x: float) -> float | None:
    if not t_years or x < t_years[0] or x > t_years[-1]:
        return None
    for i in range(1, len(t_years)):
        if x <= t_years[i]:
            t0, t1 = t_years[i - 1], t_years[i]
            w = (x - t0) / (t1 - t0) if t1 > t0 else 0.0
            return values[i - 1] + w * (values[i] - values[i - 1])
    return values[-1]


def _readings_of(patient: Patient) -> dict[str, list[tuple[dt.datetime, float, int, bool]]]:
    """The patient's readings of the charted variables in one query: (time, value, id, implausible)."""
    variables = [v for _, vs in CHART_PANELS for v in vs]
    code_to_var = {c: v for v in variables for c in _codes(v)}
    out: dict[str, list[tuple[dt.datetime, float, int, bool]]] = defaultdict(list)
    rows = (
        Observation.objects.filter(patient=patient, code__in=list(code_to_var))
        .exclude(status__in=NOT_A_RESULT)
        .filter(value__isnull=False)
        .order_by("effective_at", "pk")
        .values_list("code", "effective_at", "value", "pk", "implausible")
    )
    for code, when, value, pk, implausible in rows:
        if value is not None:
            out[code_to_var[code]].append((when, float(value), pk, bool(implausible)))
    return out


def _treatment_markers(meds: list[Medication]) -> list[dict[str, str]]:
    """Starts (or, when no start is recorded, prescriptions) and stops of every medication."""
    markers = []
    for m in meds:
        name = m.name
        if m.treatment_class:
            name = f"{m.name} ({treatments.label_for(m.treatment_class).lower()})"
        started = m.start or m.authored_on
        if started:
            markers.append({"at": started.isoformat(), "label": f"Started {name}", "kind": "start"})
        if m.stop:
            markers.append({"at": m.stop.isoformat(), "label": f"Stopped {name}", "kind": "stop"})
    return markers


def _previous_snapshot(patient: Patient, latest: TwinSnapshot) -> TwinSnapshot | None:
    """The fit to judge against what happened: the newest one at least 90 days before the latest
    with readings since, else the one before the latest."""
    older = TwinSnapshot.objects.filter(patient=patient, computed_at__lt=latest.computed_at)
    cutoff = latest.reference_at - dt.timedelta(days=90)
    return (
        older.filter(reference_at__lte=cutoff).order_by("-computed_at", "-pk").first()
        or older.order_by("-computed_at", "-pk").first()
    )


def _past_rows(
    past: TwinSnapshot, readings: dict[str, list[tuple[dt.datetime, float, int, bool]]]
) -> list[PastPredictionRow]:
    payload = twin_services.snapshot_payload(past)
    t_years: list[float] = payload["t_years"]  # type: ignore[assignment]
    variables: dict[str, dict[str, Any]] = payload["variables"]  # type: ignore[assignment]
    rows = []
    for v, label in VARIABLE_LABELS.items():
        bands = variables.get(v)
        if bands is None:
            continue
        pred, obs, within = [], [], 0
        for when, value, _pk, _flag in readings.get(v, []):
            if when <= past.reference_at:
                continue
            x = (when - past.reference_at).total_seconds() / (365.25 * 86400)
            median = _interp(t_years, bands["median"], x)
            lo = _interp(t_years, bands["lo80"], x)
            hi = _interp(t_years, bands["hi80"], x)
            if median is None or lo is None or hi is None:
                continue
            pred.append(median)
            obs.append(value)
            within += int(lo <= value <= hi)
        if pred:
            rows.append(
                PastPredictionRow(
                    label=label,
                    unit=DISPLAY_UNITS[v],
                    n=len(pred),
                    predicted=sum(pred) / len(pred),
                    observed=sum(obs) / len(obs),
                    mean_abs_error=sum(abs(p - o) for p, o in zip(pred, obs, strict=True))
                    / len(pred),
                    within_80=within,
                )
            )
    return rows


def twin_page(*, user: User, patient_id: int, now: dt.datetime | None = None) -> TwinPage:
    """Everything the twin page shows (``Patient.DoesNotExist`` for a patient the user may not see)."""
    now = now or timezone.now()
    patient = patient_get(user=user, patient_id=patient_id)
    problems = list(
        Condition.objects.filter(patient=patient, abatement_at__isnull=True)
        .exclude(clinical_status__in=("resolved", "inactive", "remission"))
        .exclude(verification_status__in=("refuted", "entered-in-error"))
        .order_by("onset_at", "pk")
    )
    all_meds = list(medications_for(patient=patient))
    current = [m for m in all_meds if m.status == Medication.Status.ACTIVE and not m.stop]
    state = twin_selectors.twin_state_for(patient=patient)
    status = twin_services.twin_status(state, now=now)
    snapshot = state.latest if state else None
    readings = _readings_of(patient)
    alerts = list(twin_selectors.alerts_for(user=user, patient_id=patient.pk))
    flagged = {a.observation_id for a in alerts if a.observation_id}
    chart: dict[str, Any] = {
        "panels": [
            {"title": title, "unit": DISPLAY_UNITS[vs[0]], "variables": list(vs)}
            for title, vs in CHART_PANELS
        ],
        "labels": VARIABLE_LABELS,
        "observed": {
            v: {
                "t": [w.isoformat() for w, _, _, _ in rows],
                "y": [round(x, 2) for _, x, _, _ in rows],
                "flagged": [pk in flagged or bad for _, _, pk, bad in rows],
            }
            for v, rows in readings.items()
        },
        "markers": _treatment_markers(all_meds),
        "forecast": None,
    }
    table: list[dict[str, Any]] = []
    risk = None
    backtest: list[BacktestRow] = []
    warnings: list[str] = []
    past = None
    past_rows: list[PastPredictionRow] = []
    if snapshot is not None:
        payload = twin_services.snapshot_payload(snapshot)
        t_years: list[float] = payload["t_years"]  # type: ignore[assignment]
        variables: dict[str, dict[str, Any]] = payload["variables"]  # type: ignore[assignment]
        chart["forecast"] = {
            "reference_at": snapshot.reference_at.isoformat(),
            "t": [_at(snapshot.reference_at, y).date().isoformat() for y in t_years],
            "variables": {
                v: {k: variables[v][k] for k in ("median", "lo80", "hi80", "lo95", "hi95")}
                for v in VARIABLE_LABELS
                if v in variables
            },
        }
        one_year = min(range(len(t_years)), key=lambda i: abs(t_years[i] - 1.0))
        for v, label in VARIABLE_LABELS.items():
            rows = readings.get(v, [])
            bands = variables.get(v)
            table.append(
                {
                    "label": label,
                    "unit": DISPLAY_UNITS[v],
                    "latest": _fmt(rows[-1][1], v) if rows else "—",
                    "latest_at": rows[-1][0] if rows else None,
                    "median_1y": _fmt(bands["median"][one_year], v) if bands else "—",
                    "band_1y": f"{_fmt(bands['lo80'][one_year], v)}–{_fmt(bands['hi80'][one_year], v)}"
                    if bands
                    else "—",
                    "readings": len(rows),
                }
            )
        risk = _risk_panel(snapshot.risk)
        backtest = _backtest_rows(snapshot.backtest)
        warnings = _trust_warnings(snapshot, status, readings)
        past = _previous_snapshot(patient, snapshot)
        if past is not None:
            past_rows = _past_rows(past, readings)
    elif status["state"] in ("none", "failed"):
        warnings.append(str(status["message"]))
    return TwinPage(
        patient=patient,
        age=age_on(patient.birth_date, (patient.deceased_at or now).date()),
        problems=problems,
        medications=current,
        status=status,
        snapshot=snapshot,
        chart=chart,
        table=table,
        risk=risk,
        backtest=backtest,
        warnings=warnings,
        past=past,
        past_rows=past_rows,
        open_alerts=alerts,
        notes=[_labelled(n) for n in snapshot.notes] if snapshot else [],
    )


def _labelled(note: str) -> str:
    """An engine note that starts with a variable key ("hba1c: ...") starts with its label."""
    key, sep, rest = note.partition(":")
    return f"{VARIABLE_LABELS[key]}:{rest}" if sep and key in VARIABLE_LABELS else note


def _pct(x: object) -> str:
    return f"{float(x) * 100:.1f} %" if isinstance(x, int | float) and math.isfinite(x) else "—"


def _risk_panel(risk: dict[str, Any] | None) -> dict[str, Any] | None:
    if not risk:
        return None
    inputs = risk.get("inputs", {})
    assumed = set(risk.get("assumed", []))
    drivers = _risk_drivers(inputs)
    return {
        "outcomes": [
            {
                "label": RISK_OUTCOME_LABELS.get(o, o),
                "ten": _pct(risk.get("ten_year", {}).get(o)),
                "thirty": _pct(risk.get("thirty_year", {}).get(o)),
            }
            for o in RISK_OUTCOME_LABELS
        ],
        "ten_year": risk.get("ten_year", {}).get(RISK_OUTCOME),
        "inputs": [
            {
                "label": RISK_INPUT_LABELS.get(k, k),
                "value": _input_value(k, v),
                "assumed": k in assumed,
            }
            for k, v in inputs.items()
        ],
        "assumed": [RISK_INPUT_LABELS.get(k, k) for k in risk.get("assumed", [])],
        "drivers": drivers,
        "model": f"PREVENT ({risk['model']} model)" if risk.get("model") else "PREVENT",
        "notes": risk.get("notes", []),
    }


def _input_value(key: str, value: object) -> str:
    if key in ("diabetes", "smoker", "bp_treated", "statin"):
        return "yes" if value else "no"
    if key == "sex":
        return "female" if value in (1, "female", 1.0) else "male"
    if isinstance(value, int | float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def _risk_drivers(inputs: dict[str, Any]) -> list[str]:
    """Plain-language reasons the risk is what it is: inputs outside the usual targets."""
    out = []

    def num(k: str) -> float | None:
        v = inputs.get(k)
        return float(v) if isinstance(v, int | float) else None

    sbp, chol, hdl, egfr, bmi, hba1c = (
        num("sbp"),
        num("total_chol"),
        num("hdl"),
        num("egfr"),
        num("bmi"),
        num("hba1c"),
    )
    age = num("age")
    if age is not None and age >= 60:
        out.append(f"age {age:.0f}")
    if sbp is not None and sbp >= 130:
        out.append(f"systolic BP {sbp:.0f} mmHg")
    if inputs.get("diabetes"):
        out.append("diabetes" + (f" (HbA1c {hba1c:.1f} %)" if hba1c else ""))
    if inputs.get("smoker"):
        out.append("current smoking")
    if chol is not None and chol >= 200:
        out.append(f"total cholesterol {chol:.0f} mg/dL")
    if hdl is not None and hdl < 40:
        out.append(f"low HDL {hdl:.0f} mg/dL")
    if egfr is not None and egfr < 60:
        out.append(f"reduced kidney function (eGFR {egfr:.0f})")
    if bmi is not None and bmi >= 30:
        out.append(f"BMI {bmi:.1f}")
    return out


def _backtest_rows(backtest: dict[str, Any]) -> list[BacktestRow]:
    rows = []
    for v, label in VARIABLE_LABELS.items():
        b = backtest.get(v)
        if not b:
            continue
        twin, locf = b.get("mae_twin"), b.get("mae_locf")
        places = DECIMALS.get(v, 0) + 1
        twin_text, locf_text = fixed(twin, places), fixed(locf, places)
        rows.append(
            BacktestRow(
                variable=v,
                label=label,
                unit=DISPLAY_UNITS[v],
                n=int(b.get("n", 0)),
                mae_twin=twin,
                mae_locf=locf,
                mae_trend=b.get("mae_trend"),
                twin_text=twin_text or "—",
                locf_text=locf_text or "—",
                verdict=_verdict(twin_text, locf_text),
            )
        )
    return rows


def _verdict(twin: str, locf: str) -> str:
    """How the twin's shown error compares with carry-forward's: a difference the page does not
    show is "same"."""
    if not twin or not locf:
        return ""
    a, b = Decimal(twin), Decimal(locf)
    return "same" if a == b else "better" if a < b else "worse"


#: Fewer readings than this of a variable and the twin leans on population values for it.
FEW_READINGS = 3


def _trust_warnings(
    snapshot: TwinSnapshot,
    status: dict[str, object],
    readings: dict[str, list[tuple[dt.datetime, float, int, bool]]],
) -> list[str]:
    out = []
    if status["state"] == "stale":
        out.append(str(status["message"]))
    sparse = [
        VARIABLE_LABELS[v] for v in ("sbp", "hba1c") if len(readings.get(v, [])) < FEW_READINGS
    ]
    if snapshot.fallback or sparse:
        which = f" ({', '.join(sparse)})" if sparse else ""
        out.append(
            "Too few readings to personalise the twin"
            f"{which}: its forecast leans on population averages and its bands are wide."
        )
    if snapshot.data_until and snapshot.reference_at - snapshot.data_until > dt.timedelta(days=365):
        out.append(
            f"The newest reading is from {snapshot.data_until:%-d %b %Y}: the forecast starts "
            "from values estimated across the gap since then, not from recent readings."
        )
    if not snapshot.backtest:
        out.append(
            "Not enough history to test the twin on this patient's own last year of readings."
        )
    return out


# ---------------------------------------------------------------------------------------------
# Notes and their summary
# ---------------------------------------------------------------------------------------------


@dataclass
class NotesPage:
    patient: Patient
    notes: list[ClinicalNote]
    drafts: list[ClinicalNote]
    summary: NoteSummary | None
    sections: list[dict[str, Any]]


def _ref(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "note_id": source.get("note_id"),
        "start": source.get("start"),
        "end": source.get("end"),
        "text": source.get("text", ""),
        "author": source.get("author", ""),
        "time": source.get("time", ""),
    }


_PAST = {
    "start": "started",
    "stop": "stopped",
    "increase": "increased",
    "decrease": "decreased",
    "hold": "held",
}


def summary_sections(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The stored summary as titled lists of items, each with the source it links to."""
    if not summary:
        return []
    problems = [
        {"text": p["name"], "detail": p.get("status", ""), "source": _ref(p["last_mentioned"])}
        for p in summary.get("problems", [])
        if p.get("status") == "active"
    ]
    changes = [
        {
            "text": f"{c['name']} {_PAST.get(c['change'], c['change'])}",
            "detail": "",
            "source": _ref(c["source"]),
        }
        for c in summary.get("recent_changes", [])
        if c.get("kind") == "medication"
    ]
    conflicts = [
        {
            "text": c["message"],
            "detail": "",
            "source": _ref(c["sources"][0]) if c.get("sources") else None,
        }
        for c in summary.get("medication_conflicts", [])
    ]
    conflicts += [
        {
            "text": f"{d['variable']}: note says {d['note_value']:g}, record {d['record_value']:g}",
            "detail": "",
            "source": _ref(d["source"]),
        }
        for d in summary.get("value_discrepancies", [])
    ]
    follow = [
        {
            "text": f["text"] or f["name"],
            "detail": f"due {f['due']}" if f.get("due") else "",
            "source": _ref(f["ordered"]),
        }
        for f in summary.get("follow_ups", [])
        if f.get("status") == "open"
    ]
    return [
        {"title": "Active problems", "items": problems, "empty": "No active problems named."},
        {"title": "Medication changes", "items": changes, "empty": "No recent changes."},
        {
            "title": "Disagreements",
            "items": conflicts,
            "empty": "No disagreements between notes or with the record.",
        },
        {"title": "Open follow-ups", "items": follow, "empty": "No open follow-ups."},
    ]


def notes_page(*, user: User, patient_id: int) -> NotesPage:
    patient = patient_get(user=user, patient_id=patient_id)
    current = list(
        current_notes_visible_to(user=user, patient=patient).select_related("previous_version")
    )
    signed = [n for n in current if n.is_signed]
    drafts = [n for n in current if not n.is_signed]
    summary = note_summary_for(patient=patient)
    data = summary.summary if summary and summary.status == TaskStatus.SUCCEEDED else None
    return NotesPage(
        patient=patient,
        notes=signed,
        drafts=drafts,
        summary=summary,
        sections=summary_sections(data),
    )


def note_versions(*, note: ClinicalNote) -> list[ClinicalNote]:
    """The note and every version it replaced, newest first."""
    out = [note]
    while out[-1].previous_version_id is not None and len(out) < 50:
        prev = out[-1].previous_version
        assert prev is not None
        out.append(prev)
    return out


# ---------------------------------------------------------------------------------------------
# What-if
# ---------------------------------------------------------------------------------------------


def whatif_saved(*, patient: Patient) -> list[WhatIfRun]:
    """Comparisons saved under a name for the care team, newest first."""
    return list(
        WhatIfRun.objects.filter(patient=patient)
        .exclude(name="")
        .select_related("requested_by")
        .defer("result")
        .order_by("-created_at", "-pk")[:20]
    )


def treatment_choices() -> list[tuple[str, str]]:
    """Catalogue interventions for the plan form (statin once; its intensity is chosen apart)."""
    seen: dict[str, str] = {}
    for row in treatments.catalogue():
        if row.key not in seen:
            seen[row.key] = "Statin" if row.key == "statin" else row.label
    return sorted(seen.items(), key=lambda kv: kv[1])


#: Variables overlaid on the what-if chart.
WHATIF_VARIABLES: tuple[str, ...] = ("sbp", "hba1c", "ldl", "weight")
#: Points per trajectory on the what-if chart (the stored grid is thinned to about monthly).
WHATIF_POINTS = 130


def whatif_step(run: WhatIfRun) -> str:
    """Where a comparison is, in words."""
    if run.status == TaskState.PENDING:
        return "Queued: waiting for a worker" + (
            "" if run.enqueued_at else " (the task queue is not reachable; it will be retried)"
        )
    if run.status == TaskState.RUNNING:
        return "Fitting the twin to the current record and comparing the plans"
    if run.status == TaskState.FAILED:
        return "The comparison could not be computed."
    return "Done"


def _triple(x: object) -> tuple[float | None, float | None, float | None]:
    if isinstance(x, list | tuple) and len(x) == 3:
        return (x[0], x[1], x[2])
    return (None, None, None)


def _events_text(arr: float | None) -> str:
    if arr is None:
        return "—"
    n = round(arr * 100)
    if n > 0:
        return f"{n} fewer event{'s' if n != 1 else ''} in 10 years"
    if n < 0:
        return f"{-n} more event{'s' if n != -1 else ''} in 10 years"
    return "no fewer events in 10 years"


def whatif_comparison(run: WhatIfRun) -> dict[str, Any] | None:
    """A finished comparison as an outcome table and thinned trajectories for the chart."""
    if run.status != TaskState.SUCCEEDED or not run.result:
        return None
    result = run.result
    reference = dt.datetime.fromisoformat(result["reference_at"])
    outcomes: dict[str, dict[str, Any]] = result.get("outcomes", {})
    rows: list[dict[str, Any]] = []
    series: dict[str, Any] = {}
    labels = dict(treatment_choices())
    # Stored JSON keeps no order: current care first, then the plans by name.
    ordered = sorted(outcomes.items(), key=lambda kv: (kv[0] != "current care", kv[0].lower()))
    for name, o in ordered:
        sbp, hba1c_1, hba1c_5 = _triple(o["sbp_1y"]), _triple(o["hba1c_1y"]), _triple(o["hba1c_5y"])
        arr = _triple(o.get("arr_10y"))
        risk = o.get("risk_10y")
        sources = [
            {
                "label": labels.get(key, "Risk reduction" if key == "risk" else key),
                "sources": "; ".join(texts),
            }
            for key, texts in (o.get("sources") or {}).items()
        ]
        forecast = o.get("forecast") or {}
        rows.append(
            {
                "name": name,
                "is_current": name == "current care",
                "plan": [
                    {
                        "label": (
                            "Stop " + mid_sentence(labels.get(i["intervention"], i["intervention"]))
                            if i.get("action") == "stop"
                            else labels.get(i["intervention"], i["intervention"])
                        )
                        + (f" ({i['intensity']} intensity)" if i.get("intensity") else "")
                        + (f", {i['dose']:g}× dose" if i.get("dose", 1.0) != 1.0 else ""),
                        "start": reference + dt.timedelta(days=i["start"]),
                        "stop": reference + dt.timedelta(days=i["stop"]) if i.get("stop") else None,
                    }
                    for i in o.get("plan", [])
                ],
                "sbp_1y": sbp,
                "hba1c_1y": hba1c_1,
                "hba1c_5y": hba1c_5,
                "risk_10y": risk,
                "arr_10y": arr,
                "risk_pct": "—" if risk is None else f"{risk * 100:.1f} %",
                "arr_pct": "—" if arr[0] is None else f"{arr[0] * 100:.1f} points",
                "events": _events_text(arr[0]),
                "sources": sources,
                "sources_title": "\n".join(f"{x['label']}: {x['sources']}" for x in sources),
                # what the plan did to courses already taken (the fit's own notes are shown once)
                "notes": [n for n in forecast.get("notes", []) if n not in result.get("notes", [])],
            }
        )
        t_days: list[float] = forecast.get("t_days", [])
        step = max(1, len(t_days) // WHATIF_POINTS)
        idx = list(range(0, len(t_days), step))
        if t_days and idx[-1] != len(t_days) - 1:
            idx.append(len(t_days) - 1)
        series[name] = {
            "t": [(reference + dt.timedelta(days=t_days[i])).date().isoformat() for i in idx],
            "variables": {
                v: {k: [round(b[k][i], 2) for i in idx] for k in ("median", "lo80", "hi80")}
                for v in WHATIF_VARIABLES
                if (b := forecast.get("variables", {}).get(v))
            },
        }
    all_sources = list({(x["label"], x["sources"]): x for r in rows for x in r["sources"]}.values())
    return {
        "reference_at": reference,
        "all_sources": all_sources,
        "fallback": result.get("fallback", False),
        "notes": result.get("notes", []),
        "rows": rows,
        "chart": {
            "series": series,
            "variables": list(WHATIF_VARIABLES),
            "labels": VARIABLE_LABELS,
            "units": DISPLAY_UNITS,
        },
    }
