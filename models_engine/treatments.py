"""The treatment catalogue: what each drug class or lifestyle change does, by how much, and why.

Every effect lives as one row of ``data/treatments.csv`` (class, variable, size, dose and baseline
dependence, onset time constant, source), so adding a drug is a data change; see
``docs/adding-a-treatment.md``. This module loads the table once and turns exposures into effect
curves on the twin's time axis (days).
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models_engine.history import TREATMENT_CLASSES, FloatArray, TreatmentExposure

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "treatments.csv"

#: Non-drug interventions a plan may contain, besides the drug classes of ``TREATMENT_CLASSES``.
LIFESTYLE_KEYS: tuple[str, ...] = ("weight_loss_5kg", "sodium_reduction", "smoking_cessation")

#: Variables a catalogue row may act on.
EFFECT_VARIABLES: tuple[str, ...] = ("sbp", "dbp", "hba1c", "weight", "ldl", "egfr", "smoker")

#: Default statin intensity when a record gives none (the commonest prescription class).
DEFAULT_STATIN_INTENSITY = "moderate"
#: Order of statin intensities (ACC/AHA 2018 cholesterol guideline, Table 3).
INTENSITY_RANK: dict[str, int] = {"low": 0, "moderate": 1, "high": 2}

#: Doses are capped at twice standard: beyond that the catalogue has no trial data.
MAX_DOSE = 2.0

#: What a plan item does: add an intervention (or change a course), or stop a drug class taken now.
PLAN_ACTIONS: tuple[str, ...] = ("add", "stop")


@dataclass(frozen=True)
class Effect:
    """One catalogue row: the steady-state effect of one intervention on one variable.

    ``delta`` is the change at standard dose and reference baseline (canonical units, or a
    fraction when ``effect == "relative"``); ``baseline_slope`` is the extra change per unit of
    pretreatment value above ``ref_baseline``; ``tau_days`` is the first-order onset time constant.
    """

    key: str
    kind: str
    label: str
    variable: str
    effect: str
    intensity: str | None
    delta: float
    ref_baseline: float | None
    baseline_slope: float
    half_dose_factor: float | None
    tau_days: float
    couple_weight: bool
    source: str


@dataclass(frozen=True)
class PlanItem:
    """One intervention of a what-if plan: ``start``/``stop`` in days from the reference date.

    ``action="stop"`` stops a drug class the patient takes: every course of it running on day
    ``start`` ends then, and its effect wears off with the catalogue row's first-order time
    constant ``tau_days`` (the same constant as its onset; see ``onset``). Such an item has no
    ``stop``, dose or intensity of its own.
    """

    intervention: str
    dose: float = 1.0
    start: float = 0.0
    stop: float | None = None
    intensity: str | None = None
    action: str = "add"

    def __post_init__(self) -> None:
        validate_key(self.intervention)
        validate_dose(self.dose)
        if self.action not in PLAN_ACTIONS:
            raise ValueError(f"action must be one of {PLAN_ACTIONS}, got {self.action!r}")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop must be after start, got start={self.start}, stop={self.stop}")
        if self.intensity is not None and self.intensity not in INTENSITY_RANK:
            raise ValueError(f"intensity must be low, moderate or high, got {self.intensity!r}")
        if self.action == "stop":
            if self.intervention not in TREATMENT_CLASSES:
                raise ValueError(
                    f"only a drug class can be stopped, got {self.intervention!r} "
                    f"(allowed: {', '.join(TREATMENT_CLASSES)})"
                )
            if self.stop is not None or self.intensity is not None or self.dose != 1.0:
                raise ValueError("a stop item has no stop date, dose or intensity of its own")

    @property
    def stops(self) -> bool:
        """Whether the item stops a drug class rather than adding one."""
        return self.action == "stop"

    def as_exposure(self) -> TreatmentExposure:
        """The same intervention as a history exposure."""
        return TreatmentExposure(
            treatment=self.intervention,
            start=self.start,
            stop=self.stop,
            dose=self.dose,
            intensity=self.intensity,
        )


def validate_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` is a known treatment class or lifestyle item."""
    if key not in TREATMENT_CLASSES and key not in LIFESTYLE_KEYS:
        allowed = ", ".join((*TREATMENT_CLASSES, *LIFESTYLE_KEYS))
        raise ValueError(f"intervention must be one of {allowed}; got {key!r}")


def validate_dose(dose: float) -> None:
    """Raise ``ValueError`` unless ``0 < dose <= MAX_DOSE`` (multiples of the standard dose)."""
    if not (0.0 < dose <= MAX_DOSE):
        raise ValueError(f"dose must be in (0, {MAX_DOSE}] standard doses, got {dose}")


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


@functools.cache
def catalogue() -> tuple[Effect, ...]:
    """All catalogue rows, loaded once per process from ``data/treatments.csv``."""
    rows: list[Effect] = []
    with CATALOGUE_PATH.open(encoding="utf-8", newline="") as fh:
        for raw in csv.DictReader(fh):
            rows.append(
                Effect(
                    key=raw["key"],
                    kind=raw["kind"],
                    label=raw["label"],
                    variable=raw["variable"],
                    effect=raw["effect"],
                    intensity=raw["intensity"] or None,
                    delta=float(raw["delta"]),
                    ref_baseline=_opt_float(raw["ref_baseline"]),
                    baseline_slope=_opt_float(raw["baseline_slope"]) or 0.0,
                    half_dose_factor=_opt_float(raw["half_dose_factor"]),
                    tau_days=float(raw["tau_days"]),
                    couple_weight=raw["couple_weight"].strip() == "1",
                    source=raw["source"],
                )
            )
    _check_catalogue(rows)
    return tuple(rows)


def _check_catalogue(rows: Sequence[Effect]) -> None:
    for row in rows:
        validate_key(row.key)
        if row.variable not in EFFECT_VARIABLES:
            raise ValueError(
                f"{row.key}: variable must be one of {EFFECT_VARIABLES}, got {row.variable!r}"
            )
        if row.effect not in ("absolute", "relative"):
            raise ValueError(f"{row.key}: effect must be absolute or relative, got {row.effect!r}")
        if row.tau_days <= 0:
            raise ValueError(f"{row.key}: tau_days must be > 0, got {row.tau_days}")
        if not row.source.strip():
            raise ValueError(f"{row.key}: every catalogue row needs a source")


def label_for(key: str) -> str:
    """The catalogue's human label of a treatment key (the key itself if unknown), without the
    intensity of a class that has several ("Statin", not "Statin (low intensity)")."""
    row = next((r for r in catalogue() if r.key == key), None)
    if row is None:
        return key
    return row.label.removesuffix(f" ({row.intensity} intensity)") if row.intensity else row.label


def strength(exposure: TreatmentExposure | PlanItem) -> tuple[int, float]:
    """How much of a treatment an exposure gives: statin intensity first, then dose."""
    return INTENSITY_RANK[exposure.intensity or DEFAULT_STATIN_INTENSITY], float(exposure.dose)


def describe(exposure: TreatmentExposure | PlanItem) -> str:
    """E.g. "2× standard dose" or "high intensity, 1× standard dose"."""
    dose = f"{float(exposure.dose):g}× standard dose"
    return f"{exposure.intensity} intensity, {dose}" if exposure.intensity else dose


@functools.cache
def effects_for(key: str, variable: str, intensity: str | None = None) -> tuple[Effect, ...]:
    """Catalogue rows of ``key`` acting on ``variable`` (statins: the row of the given intensity)."""
    validate_key(key)
    rows = [r for r in catalogue() if r.key == key and r.variable == variable]
    if any(r.intensity is not None for r in rows):
        wanted = intensity or DEFAULT_STATIN_INTENSITY
        rows = [r for r in rows if r.intensity == wanted]
    return tuple(rows)


def dose_factor(dose: float, half_dose_factor: float | None) -> float:
    """Multiplier of the standard-dose effect at ``dose`` standard doses.

    Law et al. BMJ 2003;326:1427 found half-standard doses give 78% of the standard-dose fall.
    The factor is log-linear in dose through that point (an assumption beyond the trial doses),
    and recorded doses above ``MAX_DOSE`` count as ``MAX_DOSE``. Rows without a ``half_dose_factor`` have no dose response.
    """
    if dose <= 0.0 or not math.isfinite(dose):
        raise ValueError(f"dose must be a positive number of standard doses, got {dose}")
    if half_dose_factor is None:
        return 1.0
    per_doubling = 1.0 - half_dose_factor
    return max(0.0, 1.0 + per_doubling * math.log2(min(dose, MAX_DOSE)))


def steady_effect(row: Effect, dose: float, baseline: FloatArray | float) -> FloatArray:
    """Steady-state change of ``row.variable`` for a pretreatment value ``baseline``.

    Parameters
    ----------
    row : Effect
        Catalogue row.
    dose : float
        Multiple of the standard dose.
    baseline : array_like, shape (...)
        Pretreatment value in the variable's canonical unit (ignored without ``ref_baseline``).

    Returns
    -------
    ndarray, shape (...)
        Change in canonical units (absolute rows) or as a fraction (relative rows). The
        baseline dependence never flips the sign of the effect.
    """
    base = np.asarray(baseline, dtype=np.float64)
    size = np.full_like(base, row.delta)
    if row.ref_baseline is not None:
        size = size + row.baseline_slope * (base - row.ref_baseline)
        size = np.minimum(size, 0.0) if row.delta < 0 else np.maximum(size, 0.0)
    out: FloatArray = size * dose_factor(dose, row.half_dose_factor)
    return out


def onset(t: FloatArray, start: float, stop: float | None, tau_days: float) -> FloatArray:
    """Fraction of the steady effect present at days ``t`` for an exposure on ``[start, stop)``.

    Exact solution of ``dx/dt = (u(t) - x) / tau`` with ``u`` the on/off indicator and ``x(start) = 0``:
    first-order onset after ``start`` and first-order offset after ``stop``.

    Parameters
    ----------
    t : ndarray, shape (...)
        Days from the reference date.
    start, stop : float
        Exposure period in days; ``stop=None`` means ongoing.
    tau_days : float
        Onset/offset time constant, days.

    Returns
    -------
    ndarray, shape (...)
        Values in [0, 1].
    """
    t = np.asarray(t, dtype=np.float64)
    on = 1.0 - np.exp(-np.clip(t - start, 0.0, None) / tau_days)
    if stop is None:
        return on
    at_stop = 1.0 - math.exp(-(stop - start) / tau_days)
    off = at_stop * np.exp(-np.clip(t - stop, 0.0, None) / tau_days)
    result: FloatArray = np.where(t < stop, on, off)
    return result


def exposures_effect(
    variable: str,
    exposures: Iterable[TreatmentExposure],
    t: FloatArray,
    baseline_at: FloatArray | None = None,
) -> FloatArray:
    """Summed effect of ``exposures`` on ``variable`` at days ``t`` (classes are additive).

    Parameters
    ----------
    variable : str
        One of ``EFFECT_VARIABLES``.
    exposures : iterable of TreatmentExposure
        Periods on treatment (drug classes or lifestyle keys).
    t : ndarray, shape (n,)
        Days from the reference date.
    baseline_at : ndarray, shape (m, k) or None
        Pretreatment value of ``variable`` at the start of each exposure (one column per exposure,
        in order; ``m`` posterior samples). ``None`` uses each row's reference baseline.

    Returns
    -------
    ndarray, shape (m, n)
        Change in canonical units; for relative rows the change of ``log(value)``.
    """
    t = np.asarray(t, dtype=np.float64)
    exps = [
        e for e in exposures if e.treatment in TREATMENT_CLASSES or e.treatment in LIFESTYLE_KEYS
    ]
    m = 1 if baseline_at is None else baseline_at.shape[0]
    total = np.zeros((m, t.size))
    for j, exp in enumerate(exps):
        for row in effects_for(exp.treatment, variable, exp.intensity):
            ref = row.ref_baseline if row.ref_baseline is not None else 0.0
            base = np.full(m, ref) if baseline_at is None else baseline_at[:, j]
            size = steady_effect(row, exp.dose, base)
            if row.effect == "relative":
                size = np.log1p(size)
            total += size[:, None] * onset(t, exp.start, exp.stop, row.tau_days)[None, :]
    return total


#: How a stopped class's effect is modelled, listed with its sources.
STOP_SOURCE = (
    "stopping: the effect wears off with the same first-order time constant as its onset "
    "(tau_days of each row above; docs/adding-a-treatment.md)"
)


def validate_plan(plan: Iterable[PlanItem]) -> None:
    """Raise ``ValueError`` when one plan both stops a drug class and adds it."""
    items = list(plan)
    stopped = {i.intervention for i in items if i.stops}
    both = sorted(stopped & {i.intervention for i in items if not i.stops})
    if both:
        raise ValueError(f"a plan may not both stop and add {', '.join(both)}")


def sources_for(keys: Iterable[str], *, stopped: Iterable[str] = ()) -> dict[str, list[str]]:
    """Source citation of every catalogue row used by the interventions ``keys``; for the classes
    in ``stopped`` (also among ``keys``) how their offset is modelled as well."""
    out: dict[str, list[str]] = {}
    ends = set(stopped)
    for key in keys:
        validate_key(key)
        out[key] = [f"{r.variable}: {r.source}" for r in catalogue() if r.key == key]
        if key in ends:
            out[key].append(STOP_SOURCE)
    return out
