"""Fits a patient's own parameters to their history: robust MAP with population priors, batched.

Each forecast variable ``v`` follows the structural model (on ``log`` scale for LDL)::

    z_v(t) = level + slope·t/365.25 + response·D_v(t; level, slope) + C_v(t) − offset·[glucose row]/28.7

``D_v`` is the summed catalogue effect of the treatments in the history (first-order onset, dose and
baseline dependence; ``treatments.py``), ``C_v`` the weight-coupled effect of deliberate weight loss
(``physiology/body.py``). Fasting glucose enters the HbA1c fit as ADAG pseudo-readings (with the
patient's offset as a parameter) when HbA1c readings are sparse, and otherwise only fits that
offset (``physiology/glycaemia.py``). The likelihood is Student-t (robust to
outliers and to lasting level jumps), fitted by iteratively reweighted generalised least squares
with Gaussian priors from ``priors.csv``, a local-trend discrepancy covariance and a per-patient
noise scale with a scaled-inverse-χ² prior. The posterior is the Laplace approximation at the
MAP. All patients are solved together as stacked systems.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.linalg import lapack

from models_engine import prequential
from models_engine.history import FloatArray, PatientHistory, TreatmentExposure
from models_engine.physiology import body, bp, glycaemia
from models_engine.treatments import effects_for, onset, steady_effect

PRIORS_PATH = Path(__file__).resolve().parent / "data" / "priors.csv"
RANGES_PATH = Path(__file__).resolve().parent / "data" / "plausible_ranges.csv"

#: Variables the twin calibrates and forecasts directly (glucose is derived from HbA1c).
FIT_VARIABLES: tuple[str, ...] = ("sbp", "dbp", "hba1c", "weight", "ldl", "egfr")
#: Variables modelled on the log scale (proportional drug effects).
LOG_VARIABLES: frozenset[str] = frozenset({"ldl"})
#: Parameters of every variable fit, in order.
PARAMETERS: tuple[str, ...] = ("level", "slope", "response", "offset")
#: Fewer readings than this and the fit leans on the priors; the result says so.
MIN_READINGS = 4
#: A fitted noise scale above this (relative to the measured within-person SD) is reported as
#: misfit: the scatter is then more than twice what measurement error explains.
MISFIT_SCALE = 2.0
#: Prior mean of the gap between ADAG mean glucose and fasting glucose, mg/dL: eAG at a typical
#: HbA1c of 5.5 % is 111 mg/dL against a typical fasting value of about 95 (assumption).
GLUCOSE_OFFSET_MEAN = 15.0
DAYS_PER_YEAR = 365.25
_IRLS_ITERATIONS = 12
#: A patient's IRLS stops once none of their parameters moves by more than this fraction of its
#: prior SD in an iteration (numerical setting, not a clinical quantity).
_IRLS_TOLERANCE = 1e-3
#: Readings this many days before a treatment start count as its pretreatment baseline.
BASELINE_WINDOW_DAYS = 365.0
#: A reading at most this many days before a treatment for its variable starts prompted it: the
#: decision is made at that visit or on its results, which return within weeks [assumption].
PROMPT_WINDOW_DAYS = 30.0
#: A new period of a class starting within this many days of the last one's end continues it.
COURSE_GAP_DAYS = 31.0
_OUTER_ITERATIONS = 3
#: Consecutive readings closer than this (days) are not used by the empirical-Bayes variogram: the
#: model's noise is visit-to-visit variability, and visits are weeks to months apart.
MIN_PAIR_GAP_DAYS = 28.0
#: Search range of the empirical-Bayes log multipliers (±ln 1000): a numerical guard only, far
#: outside what the log-normal hyperprior allows.
_HYPER_LOG_BOUND = math.log(1000.0)
#: Fewer patients with variogram pairs than this and the batch keeps priors.csv's noise and walk:
#: a batch estimate from a handful of patients would mostly re-use each one's own readings, which
#: ``patient_noise_and_walk`` then counts a second time (a batch of one counts them twice).
MIN_EB_PATIENTS = 10
#: Fewer patients whose readings inform their response than this and the batch keeps the
#: catalogue's response prior (``pooled_response``); from this many to ``MIN_EB_PATIENTS`` the
#: mean is pooled and the spread kept. Three: the fewest for which the batch's mean is not one or
#: two patients' own estimate [assumption].
MIN_RESPONSE_PATIENTS = 3
#: Largest ``patients × rows²`` solved as one stack (about 32 MB per float64 array of the stack);
#: ``solve_batch`` splits a batch into blocks of similar record length within it.
SOLVE_BLOCK_CELLS = 1 << 22
#: Widest record of a block as a multiple of its narrowest, from ``SPD_LOOP_ROWS`` rows on
#: (numerical setting): on the generated cohort, whose blood-pressure records run from 15 to 120
#: rows, one block of 24 to 120 rows spent most of its solves on padding.
SOLVE_BLOCK_SPREAD = 1.5
#: More readings of one variable than this (home monitors send several a day) are averaged into
#: visits before the fit: the model's noise is visit-to-visit variability (Muntner 2015, twin-model.md
#: 5), so readings of one window carry one visit's information, and the dense covariance of the
#: fit grows with the square of the rows (its solve with the cube). 120 rather than 400: on 300
#: generated patients with home BP monitoring the 12-month backtest was the same (SBP MAE 8.06 vs
#: 8.06 mmHg, DBP 5.11 vs 5.10, 80 % coverage 0.80 vs 0.81) and calibration 6x faster, since
#: weekly means of home readings carry what the daily readings did (bench/twin_nightly.py).
MAX_FIT_READINGS = 120
#: Window lengths tried in turn (days) until a record has at most ``MAX_FIT_READINGS`` visits.
VISIT_WINDOWS_DAYS: tuple[float, ...] = (1.0, 7.0, 14.0, 28.0, 91.0, 182.0, 365.0)
#: Variogram pairs evaluated together on each patient's (noise, walk) grid (bounds the memory).
_PAIR_CHUNK = 20_000


@functools.cache
def priors() -> dict[tuple[str, str], float]:
    """Population priors from ``data/priors.csv`` keyed by (variable, parameter); loaded once."""
    out: dict[tuple[str, str], float] = {}
    with PRIORS_PATH.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["source"].strip():
                raise ValueError(f"priors.csv: {row['variable']}.{row['parameter']} has no source")
            out[(row["variable"], row["parameter"])] = float(row["value"])
    return out


def noise_dof() -> float:
    """Degrees of freedom of the Student-t likelihood (priors.csv)."""
    return priors()[("all", "noise_dof")]


def observation_sd(variable: str, value: FloatArray) -> FloatArray:
    """Measurement SD of ``variable`` readings on the model scale (log for LDL); shape of ``value``.

    Constant for BP and weight, proportional (CV) for laboratory values (priors.csv).
    """
    p = priors()
    v = np.asarray(value, dtype=np.float64)
    if (variable, "noise_sd") in p:
        return np.full(v.shape, p[(variable, "noise_sd")])
    cv = p[(variable, "noise_cv")]
    if variable in LOG_VARIABLES:
        return np.full(v.shape, cv)
    out: FloatArray = cv * np.abs(v)
    return out


def noise_floor(variable: str) -> float:
    """Least noise multiplier of ``variable``: priors.csv's ``noise_floor`` over its noise SD or CV.

    Every patient's fitted noise (``VariableFit.noise_scale``) is at least this, so a record of
    repeated values (copied forward, or a generator's constant series) still forecasts a new
    reading with the measurement's own imprecision, and drift alerts stay quiet for ordinary
    variation.
    """
    p = priors()
    documented = p.get((variable, "noise_sd"), p.get((variable, "noise_cv")))
    floor = p.get((variable, "noise_floor"))
    if documented is None or floor is None:
        return 0.0
    return floor / documented


def to_model_scale(variable: str, y: FloatArray) -> FloatArray:
    """Canonical units → model scale (log for LDL)."""
    out: FloatArray = np.log(np.maximum(y, 1e-6)) if variable in LOG_VARIABLES else np.asarray(y)
    return out


def from_model_scale(variable: str, z: FloatArray) -> FloatArray:
    """Model scale → canonical units."""
    out: FloatArray = np.exp(z) if variable in LOG_VARIABLES else np.asarray(z)
    return out


@dataclass(frozen=True)
class VariableFit:
    """Posterior of one variable's parameters (level at day 0, slope per year, response, offset).

    ``mean`` has shape (4,) and ``cov`` shape (4, 4), on the model scale. ``noise_scale``
    multiplies the prior measurement SD. ``walk_var`` and ``slope_walk_var`` are the local-trend
    variances the fit used (``None``: those of priors.csv). ``fallback`` is True when fewer than ``MIN_READINGS``
    readings were available and the priors dominate.
    """

    variable: str
    mean: FloatArray
    cov: FloatArray
    prior_mean: FloatArray
    prior_sd: FloatArray
    noise_scale: float
    n_obs: int
    t_last: float
    fallback: bool
    walk_var: float | None = None
    slope_walk_var: float | None = None
    #: Posterior probability of the structural model against the local-level and steady-level
    #: models (``prequential``); the forecast is their mixture. 1.0: the structural model alone.
    weight: float = 1.0
    #: Posterior probability of the steady-level model; the local level has the rest,
    #: ``1 − weight − steady_weight``.
    steady_weight: float = 0.0
    #: The local-level model's level after the last reading (treatment effects removed, model
    #: scale) and its variance; NaN when it has no readings.
    local_level: float = math.nan
    local_level_var: float = 0.0
    #: The local-level model's noise multiplier (the patient's empirical-Bayes one, floored); the
    #: steady-level model's too.
    local_noise_scale: float = 1.0
    #: The steady-level model's level after the last reading (treatment effects removed, model
    #: scale) and its variance; NaN when it has no readings.
    steady_level: float = math.nan
    steady_level_var: float = 0.0
    #: Each treatment class's mean response relative to the batch's mean response for this
    #: variable (``pooled_class_scales``); the effect column and every forecast of this fit
    #: multiply that class's catalogue effect by it. Empty: every class at 1.
    class_scale: Mapping[str, float] = field(default_factory=dict)

    def walk_variances(self) -> tuple[float, float]:
        """Level random-walk and slope-diffusion variances per year (model scale) of this fit.

        The batch's empirical-Bayes estimates when calibration made them, else priors.csv.
        """
        p = priors()
        q = p[(self.variable, "rw_var")] if self.walk_var is None else self.walk_var
        qs = (
            p[(self.variable, "slope_rw_var")]
            if self.slope_walk_var is None
            else self.slope_walk_var
        )
        return q, qs

    @property
    def shrinkage(self) -> FloatArray:
        """Per parameter, posterior SD / prior SD: 1 means the data taught nothing."""
        out: FloatArray = np.sqrt(np.diag(self.cov)) / self.prior_sd
        return out


@dataclass(frozen=True)
class Calibration:
    """A patient's calibrated twin: the fits plus the context the forecast needs."""

    history: PatientHistory
    until: float
    fits: dict[str, VariableFit]
    notes: tuple[str, ...] = ()
    context: dict[str, float] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        """The patient's identifier."""
        return self.history.patient_id

    @property
    def fallback(self) -> bool:
        """True when any variable had too few readings and fell back towards the prior."""
        return any(f.fallback for f in self.fits.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary."""
        return {
            "patient_id": self.patient_id,
            "until": self.until,
            "fallback": self.fallback,
            "notes": list(self.notes),
            "fits": {
                v: {
                    "parameters": dict(zip(PARAMETERS, f.mean.tolist(), strict=True)),
                    "sd": dict(zip(PARAMETERS, np.sqrt(np.diag(f.cov)).tolist(), strict=True)),
                    "n_obs": f.n_obs,
                    "noise_scale": f.noise_scale,
                    "fallback": f.fallback,
                    "structural_weight": f.weight,
                    "steady_weight": f.steady_weight,
                    "class_scale": dict(f.class_scale),
                }
                for v, f in self.fits.items()
            },
        }


def small_median(a: FloatArray) -> float:
    """``np.median`` of a short 1-D array without its per-call overhead (called per patient)."""
    s = np.sort(a)
    k = s.size // 2
    return float(s[k]) if s.size % 2 else float(0.5 * (s[k - 1] + s[k]))


def merge_courses(
    exposures: Sequence[TreatmentExposure],
) -> list[tuple[TreatmentExposure, bool]]:
    """Exposures in start order, overlaps within a class resolved, each flagged as a continuation.

    Records list renewals as back-to-back or overlapping periods of one class; counting both
    would double the effect. A period that starts while another of its class is running (or
    within ``COURSE_GAP_DAYS`` of its end) ends the earlier one and continues its course: same
    pretreatment baseline, new dose.
    """
    out: list[tuple[TreatmentExposure, bool]] = []
    running: dict[str, int] = {}
    for exp in sorted(exposures, key=lambda e: e.start):
        if not (math.isfinite(exp.dose) and exp.dose > 0.0):
            # a record without a usable dose cannot be simulated; it is left out, not guessed
            continue
        j = running.get(exp.treatment)
        continues = False
        if j is not None:
            prev = out[j][0]
            if prev.stop is None or exp.start <= prev.stop + COURSE_GAP_DAYS:
                continues = True
                if prev.stop is None or prev.stop > exp.start:
                    cut = TreatmentExposure(
                        prev.treatment, prev.start, exp.start, prev.dose, prev.intensity
                    )
                    out[j] = (cut, out[j][1])
        running[exp.treatment] = len(out)
        out.append((exp, continues))
    return out


def effect_matrix(
    variable: str,
    exposures: Sequence[TreatmentExposure],
    t: FloatArray,
    level: FloatArray,
    slope: FloatArray,
    response: FloatArray,
    readings: tuple[FloatArray, FloatArray] | None = None,
    scales: Mapping[str, float] | None = None,
) -> FloatArray:
    """Summed treatment effect ``D_v`` for each parameter sample (model scale); see
    ``_effect_matrix`` for the baselines, parameters and result."""
    return _effect_matrix(variable, exposures, t, level, slope, response, readings, scales)[0]


def _effect_matrix(
    variable: str,
    exposures: Sequence[TreatmentExposure],
    t: FloatArray,
    level: FloatArray,
    slope: FloatArray,
    response: FloatArray,
    readings: tuple[FloatArray, FloatArray] | None = None,
    scales: Mapping[str, float] | None = None,
) -> tuple[FloatArray, bool]:
    """Summed treatment effect ``D_v`` for each parameter sample (model scale).

    Each exposure's baseline is the patient's value just before it starts, as in the trials behind
    the catalogue's baseline dependence: the median reading of the preceding ``BASELINE_WINDOW_DAYS``
    when there is one; the catalogue's reference baseline (the average trial effect) when the
    exposure predates every reading; otherwise the fitted trajectory (trend plus earlier exposures).
    Anchoring on readings keeps a steep fitted slope from inventing large historical effects.

    Parameters
    ----------
    variable : str
    exposures : sequence of TreatmentExposure
    t : ndarray, shape (n,)
        Days.
    level, slope, response : ndarray, shape (m,)
        Parameter samples (model scale; slope per year).
    readings : (t, y) arrays, optional
        The patient's readings of ``variable`` (days, canonical units).
    scales : mapping, optional
        Each treatment class's mean response relative to the batch's (``pooled_class_scales``),
        multiplying that class's catalogue effect; a class not named keeps 1.

    Returns
    -------
    ndarray, shape (m, n)
        Unscaled effect (multiply by ``response``); on the log scale for LDL.
    bool
        Whether a baseline came from the fitted trajectory, so that the result depends on
        ``level``, ``slope`` and ``response``; otherwise it depends on the records alone.
    """
    t = np.asarray(t, dtype=np.float64)
    m = level.shape[0]
    total = np.zeros((m, t.size))
    done: list[tuple[float, FloatArray, float, float | None]] = []
    t_obs, y_obs = readings if readings is not None else (np.empty(0), np.empty(0))
    bases: dict[str, FloatArray | None] = {}
    fitted = False
    for exp, continues in merge_courses(exposures):
        rows = effects_for(exp.treatment, variable, exp.intensity)
        if not rows:
            continue
        window = (t_obs <= exp.start) & (t_obs >= exp.start - BASELINE_WINDOW_DAYS)
        base: FloatArray | None = None
        if continues:
            # a renewal or dose change keeps the pretreatment baseline of the course
            base = bases.get(exp.treatment)
        elif window.any():
            base = np.full(m, small_median(y_obs[window]))
        elif t_obs.size and exp.start < t_obs.min():
            base = None
        else:
            z0 = level + slope * exp.start / DAYS_PER_YEAR
            for tau, size, start, stop in done:
                z0 = z0 + response * size * onset(np.array([exp.start]), start, stop, tau)[0]
            base = from_model_scale(variable, z0)
            fitted = True
        bases[exp.treatment] = base
        for row in rows:
            ref = row.ref_baseline if row.ref_baseline is not None else 0.0
            size = steady_effect(row, exp.dose, np.full(m, ref) if base is None else base)
            if row.effect == "relative":
                size = np.log1p(size)
            if scales is not None:
                size = size * scales.get(exp.treatment, 1.0)
            total += size[:, None] * onset(t, exp.start, exp.stop, row.tau_days)[None, :]
            done.append((row.tau_days, size, exp.start, exp.stop))
    return total, fitted


@functools.cache
def plausible_ranges() -> dict[str, tuple[float, float, str]]:
    """Plausible (low, high, unit) of each variable from ``data/plausible_ranges.csv``; loaded once.

    The same limits as the records layer's import flags (``patients/data/plausible_ranges.csv``),
    kept here so the engine checks its inputs whoever built them.
    """
    out: dict[str, tuple[float, float, str]] = {}
    with RANGES_PATH.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["source"].strip():
                raise ValueError(f"plausible_ranges.csv: {row['variable']} has no source")
            out[row["variable"]] = (float(row["low"]), float(row["high"]), row["unit"])
    return out


def plausible(variable: str, y: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether each value of ``y`` (canonical units) is finite and within the plausible range."""
    y = np.asarray(y, dtype=np.float64)
    ok: npt.NDArray[np.bool_] = np.isfinite(y) & (y > 0)
    limits = plausible_ranges().get(variable)
    if limits is not None:
        ok &= (y >= limits[0]) & (y <= limits[1])
    return ok


def readings(history: PatientHistory, variable: str, until: float) -> tuple[FloatArray, FloatArray]:
    """Times and values of ``variable`` at or before day ``until`` that the twin may use.

    Values outside the plausible range (``plausible``; e.g. an HbA1c below 4 %, which does not
    reflect glycaemia) stay in the record but are left out everywhere in the fit;
    ``implausible_note`` says so in the calibration notes.
    """
    series = history.observations.get(variable)
    if series is None:
        return np.empty(0), np.empty(0)
    keep = (series.t <= until) & plausible(variable, series.y)
    return series.t[keep], series.y[keep]


def implausible_note(history: PatientHistory, variable: str, until: float) -> str | None:
    """A calibration note naming the readings of ``variable`` left out as implausible, or None."""
    series = history.observations.get(variable)
    if series is None:
        return None
    before = (series.t <= until) & np.isfinite(series.y)
    bad = before & ~plausible(variable, series.y)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    low, high, unit = plausible_ranges().get(variable, (0.0, math.inf, ""))
    values = ", ".join(f"{v:g}" for v in series.y[bad][:3]) + (", ..." if n_bad > 3 else "")
    return (
        f"{variable}: {n_bad} reading(s) outside the plausible range {low:g}-{high:g} {unit} "
        f"({values}) left out of the fit"
    )


def _visit_groups(t: FloatArray) -> tuple[float, npt.NDArray[np.intp] | None]:
    """Days per visit window for readings at days ``t`` (0: no averaging) and each reading's window.

    The shortest of ``VISIT_WINDOWS_DAYS`` that leaves at most ``MAX_FIT_READINGS`` windows.
    """
    if t.size <= MAX_FIT_READINGS:
        return 0.0, None
    for window in VISIT_WINDOWS_DAYS:
        _, which = np.unique(np.floor(t / window), return_inverse=True)
        if which.max() < MAX_FIT_READINGS:
            break
    return window, which


def _averaged(which: npt.NDArray[np.intp] | None, *arrays: FloatArray) -> tuple[FloatArray, ...]:
    """Each of ``arrays`` averaged within the groups ``which`` (unchanged when ``None``)."""
    if which is None:
        return arrays
    counts = np.bincount(which).astype(np.float64)
    return tuple(np.bincount(which, weights=a) / counts for a in arrays)


def visit_window(t: FloatArray) -> float:
    """Days per visit window for readings at days ``t``: 0 (no averaging) up to ``MAX_FIT_READINGS``."""
    return _visit_groups(t)[0]


def as_visits(t: FloatArray, *values: FloatArray) -> tuple[FloatArray, ...]:
    """``t`` and each of ``values`` averaged over the readings of each visit window.

    The window is ``visit_window(t)``; with none the arrays come back unchanged. A window's time
    and values are the means of its readings; the measurement SD passed in ``values`` stays a
    visit's SD, since the day-to-day variability a visit samples does not average away.
    """
    return _averaged(_visit_groups(t)[1], t, *values)


class Rows(NamedTuple):
    """One patient's rows of one variable for the fit (``_rows``)."""

    t: FloatArray
    z: FloatArray
    sd: FloatArray
    flag: FloatArray
    #: days per visit window the readings were averaged over; 0 when they were not
    window: float


def _rows(history: PatientHistory, variable: str, until: float) -> Rows:
    """Times, model-scale values, measurement SDs and glucose-row flags of one variable.

    Long records are averaged into visits first (``as_visits``).
    """
    t, y = readings(history, variable, until)
    window, which = _visit_groups(t)
    t, y = _averaged(which, t, y)
    z = to_model_scale(variable, y)
    sd = observation_sd(variable, y)
    flag = np.zeros(t.size)
    if variable == "hba1c" and t.size < MIN_READINGS:
        # fasting glucose is a noisier proxy: it informs HbA1c only when HbA1c itself is sparse
        tg, g = as_visits(*readings(history, "glucose", until))
        zg = glycaemia.hba1c_from_glucose(g)
        sdg = priors()[("glucose", "noise_cv")] * g / glycaemia.ADAG_SLOPE
        t, z = np.concatenate([t, tg]), np.concatenate([z, zg])
        sd, flag = np.concatenate([sd, sdg]), np.concatenate([flag, np.ones(tg.size)])
    return Rows(t, z, sd, flag, window)


def prior_for(
    history: PatientHistory, variable: str, until: float
) -> tuple[FloatArray, FloatArray]:
    """Prior mean and SD of (level, slope/yr, response, offset) on the model scale."""
    p = priors()
    age = max(history.age_years + until / DAYS_PER_YEAR, 18.0)
    t, y = readings(history, variable, until)
    resp_sd = p[(variable, "response_sd")]
    offset_mean, offset_sd = 0.0, 1.0
    if variable in ("sbp", "dbp"):
        track = bp.sbp_on_track if variable == "sbp" else bp.dbp_on_track
        ref = bp.REF_SBP if variable == "sbp" else bp.REF_DBP
        level = float(track(age, ref))
        obs_age = (
            float(np.clip(history.age_years + small_median(t) / DAYS_PER_YEAR, 18, 110))
            if t.size
            else age
        )
        reading = small_median(y) if y.size else level
        slope_fn = bp.sbp_slope if variable == "sbp" else bp.dbp_slope
        slope = float(slope_fn(obs_age, reading))
    elif variable == "hba1c":
        diabetic = history.diabetes or (y.size > 0 and small_median(y) >= glycaemia.DIABETES_HBA1C)
        tag = "diabetic" if diabetic else "nondiabetic"
        level = p[("hba1c", f"level_mean_{tag}")]
        slope = p[("hba1c", f"slope_mean_{tag}")]
        offset_mean, offset_sd = GLUCOSE_OFFSET_MEAN, p[("glucose", "offset_sd")]
    elif variable == "weight":
        level = p[("weight", f"level_mean_{history.sex}")]
        band = "under_60" if age < 60 else ("60_to_70" if age < 70 else "over_70")
        slope = p[("weight", f"slope_mean_{band}")]
    elif variable == "ldl":
        level = math.log(p[("ldl", "level_mean")])
        slope = p[("ldl", "slope_mean")]
    else:
        level = p[(variable, "level_mean")]
        slope = p[(variable, "slope_mean")]
    mean = np.array([level, slope, 1.0, offset_mean])
    sd = np.array([p[(variable, "level_sd")], p[(variable, "slope_sd")], resp_sd, offset_sd])
    return mean, sd


def solve_batch(
    x: FloatArray,
    z: FloatArray,
    sd: FloatArray,
    mask: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    *,
    dof: float,
    prior_dof: float,
    age_years: FloatArray | None = None,
    walk_var: float | FloatArray = 0.0,
    slope_walk_var: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Robust MAP of many stacked linear problems with a local-trend discrepancy (IRLS + GLS).

    Each patient's readings are ``z = x·θ + W + ε``: ``θ`` has a Gaussian prior, ``ε`` is
    Student-t noise, and ``W`` is a local linear trend pinned to zero (level and slope) at the last
    reading: a random walk of variance ``walk_var`` per year plus an integrated random walk whose
    slope diffuses by ``slope_walk_var`` per year, going back in time. The forecast carries the same
    terms forward. Old readings therefore inform the current level and slope less than recent ones.
    The level walk's increments are Student-t as well (reweighted between readings), so an isolated
    reading is an outlier while a lasting jump (a new drug, an illness) moves the level. A patient
    with fewer than ``MIN_READINGS`` readings gets Gaussian weights and keeps the prior noise
    scale: one to three readings are no majority to call one an outlier, and against the
    population prior alone a Student-t weight would discard a high reading the more, the higher it
    is.

    Parameters
    ----------
    x : ndarray, shape (P, N, k)
        Design rows (padded rows must be zero).
    z : ndarray, shape (P, N)
        Observations on the model scale (padded rows zero).
    sd : ndarray, shape (P, N)
        Prior measurement SD of each row (> 0).
    mask : ndarray, shape (P, N)
        1 for real rows, 0 for padding.
    prior_mean, prior_sd : ndarray, shape (P, k)
        Gaussian priors.
    dof : float
        Student-t degrees of freedom (> 2).
    prior_dof : float
        Prior degrees of freedom of the noise scale (scaled-inverse-χ² centred on 1).
    age_years : ndarray, shape (P, N), optional
        Years between each reading and the patient's last reading (>= 0); needed when
        ``walk_var > 0``.
    walk_var : float or ndarray, shape (P,)
        Random-walk variance per year, model-scale units squared; one for all or one per patient.
    slope_walk_var : float
        Slope diffusion, (model-scale units per year)² per year.

    Returns
    -------
    mean : ndarray, shape (P, k)
    cov : ndarray, shape (P, k, k)
        Laplace approximation (inverse of the reweighted information).
    scale : ndarray, shape (P,)
        Fitted noise scale relative to ``sd``.
    """
    if np.any(sd <= 0):
        raise ValueError("sd must be > 0 for every row")
    if dof <= 2:
        raise ValueError(f"dof must be > 2, got {dof}")
    n_pat, n_par = x.shape[0], x.shape[2]
    q_all = np.broadcast_to(np.asarray(walk_var, dtype=np.float64), (n_pat,))
    u_all = np.zeros(z.shape) if age_years is None else age_years
    mean = np.empty((n_pat, n_par))
    cov = np.empty((n_pat, n_par, n_par))
    scale = np.empty(n_pat)
    for idx, width in solve_blocks(mask):
        cols = slice(0, width)
        mean[idx], cov[idx], scale[idx] = _solve_block(
            x[idx, cols],
            z[idx, cols],
            sd[idx, cols],
            mask[idx, cols],
            prior_mean[idx],
            prior_sd[idx],
            dof=dof,
            prior_dof=prior_dof,
            age_years=u_all[idx, cols],
            walk_var=q_all[idx],
            slope_walk_var=slope_walk_var,
        )
    return mean, cov, scale


def solve_blocks(
    mask: FloatArray, cells: int | None = None, spread: float | None = None
) -> list[tuple[npt.NDArray[np.intp], int]]:
    """Patients grouped by their number of rows, each group with the row width it needs.

    ``mask`` (P, N) marks real rows. Patients are taken in order of their last real row and
    grouped so that a group's ``patients × width²`` (the size of its covariance stack) stays
    within ``cells`` (default ``SOLVE_BLOCK_CELLS``); a patient alone may exceed it. From
    ``SPD_LOOP_ROWS`` rows on, a group's widest record is at most ``spread`` (default
    ``SOLVE_BLOCK_SPREAD``) times its narrowest, since every record of a group is padded to
    the widest and a solve costs the cube of its width; narrower records share one stacked solve.
    A long home-monitoring record therefore costs its own block, not the whole batch padded to
    its length.
    """
    cells = SOLVE_BLOCK_CELLS if cells is None else cells
    spread = SOLVE_BLOCK_SPREAD if spread is None else spread
    n_pat, n_rows = mask.shape
    width = np.where(mask > 0, np.arange(1, n_rows + 1)[None, :], 0).max(axis=1, initial=0)
    width = np.maximum(width, 1)
    order = np.argsort(width, kind="stable")
    sorted_width = width[order]
    blocks = []
    start = 0
    while start < n_pat:
        narrow = int(sorted_width[start])
        widest = SPD_LOOP_ROWS - 1 if narrow < SPD_LOOP_ROWS else int(narrow * spread)
        stop = int(np.searchsorted(sorted_width, widest, side="right"))
        stop = min(stop, start + max(1, cells // narrow**2))
        while stop - start > 1 and (stop - start) * int(sorted_width[stop - 1]) ** 2 > cells:
            stop = start + (stop - start) // 2
        idx = order[start:stop]
        blocks.append((idx, int(width[idx].max())))
        start = stop
    return blocks


def _solve_block(
    x: FloatArray,
    z: FloatArray,
    sd: FloatArray,
    mask: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    *,
    dof: float,
    prior_dof: float,
    age_years: FloatArray,
    walk_var: FloatArray,
    slope_walk_var: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``solve_batch`` on one block of patients, all arrays already cut to the block's width."""
    n_par = x.shape[2]
    q_walk = walk_var[:, None]
    # t-distribution scale that gives the stated SD
    s_t2 = sd**2 * (dof - 2.0) / dof
    n = mask.sum(axis=1)
    # too few readings to tell an outlier from the patient's level: Gaussian weights
    robust = (n >= MIN_READINGS)[:, None]
    prior_prec = 1.0 / prior_sd**2
    diag = np.arange(n_par)
    # single precision for the stacked row solves: the diagonal carries the measurement
    # variance, so the systems are well conditioned; on 500 generated patients the posterior
    # means moved by at most 4e-5 posterior SDs, and the solves take a fifth less time
    f32 = np.float32
    slope_kern = np.zeros(z.shape + z.shape[-1:], dtype=f32)
    u = np.where(mask > 0, age_years, 0.0)
    if slope_walk_var > 0.0:
        lo = np.minimum(u[:, :, None], u[:, None, :])
        hi = np.maximum(u[:, :, None], u[:, None, :])
        # zero in the rows and columns of padding, where u is 0
        slope_kern = (slope_walk_var * lo**2 * (3.0 * hi - lo) / 6.0).astype(f32)
    # the level walk has Student-t increments (reweighted like the readings), so a lasting jump
    # is absorbed by the level instead of bending the slope; increments run back from the last
    # reading in order of distance
    order = np.argsort(np.where(mask > 0, u, np.inf), axis=1)
    rank = np.argsort(order, axis=1)
    u_sorted = np.take_along_axis(u, order, axis=1)
    gaps = np.diff(u_sorted, axis=1, prepend=0.0) * np.take_along_axis(mask, order, axis=1)
    walk_w = np.ones(z.shape)
    w = mask.copy()
    scale2 = np.ones(x.shape[0])
    rows = np.arange(z.shape[1])
    rhs = np.concatenate([x, z[..., None]], axis=2).astype(f32)
    mean = prior_mean.copy()
    a = np.zeros((x.shape[0], n_par, n_par))
    a[:, diag, diag] = prior_prec
    # the stacked problems are independent: a patient whose estimate has settled leaves the
    # block, so the few slow ones do not keep every solve of the block running
    act = np.arange(x.shape[0])
    for it in range(_IRLS_ITERATIONS):
        m_act = mask[act]
        everyone = act.size == x.shape[0]
        # the walk's variance at each reading, in order of distance from the last one
        walked = np.cumsum(q_walk[act] * gaps[act] / walk_w[act], axis=1)
        # >= 0 and set to 0 for padding, so the kernel is 0 in its rows and columns
        cum = (np.take_along_axis(walked, rank[act], axis=1) * m_act).astype(f32)
        s2_act = scale2[act]
        var = np.where(m_act > 0, s_t2[act] * s2_act[:, None] / np.maximum(w[act], 1e-12), 1.0)
        sigma = np.minimum(cum[:, :, None], cum[:, None, :])
        sigma += slope_kern if everyone else slope_kern[act]
        sigma[:, rows, rows] += var.astype(f32)
        sol = spd_solve(sigma, rhs if everyone else rhs[act]).astype(np.float64)
        x_act = x[act]
        pp_act = prior_prec[act]
        a_act = np.einsum("pni,pnj->pij", x_act, sol[:, :, :n_par])
        a_act[:, diag, diag] += pp_act
        b = np.einsum("pni,pn->pi", x_act, sol[:, :, n_par]) + prior_mean[act] * pp_act
        new_mean = np.linalg.solve(a_act, b[..., None])[..., 0]
        moved = np.max(np.abs(new_mean - mean[act]) * np.sqrt(pp_act), axis=1)
        mean[act] = new_mean
        a[act] = a_act
        going = moved >= _IRLS_TOLERANCE
        if it == _IRLS_ITERATIONS - 1 or not going.any():
            break
        act, sol, var, walked = act[going], sol[going], var[going], walked[going]
        m_act, s2_act = m_act[going], s2_act[going]
        rob = robust[act]
        alpha = sol[:, :, n_par] - np.einsum("pni,pi->pn", sol[:, :, :n_par], mean[act])
        # the part of the residual the walk does not explain is the measurement error
        eps = var * alpha * m_act
        r2 = eps**2 / s_t2[act]
        w_act = np.where(rob, m_act * (dof + 1.0) / (dof + r2 / s2_act[:, None]), m_act)
        w[act] = w_act
        scale2[act] = np.where(
            rob[:, 0], (prior_dof + (w_act * r2).sum(axis=1)) / (prior_dof + n[act]), 1.0
        )
        if np.any(q_walk > 0.0):
            steps = np.diff(
                _walk_level(walked, np.take_along_axis(alpha, order[act], axis=1)),
                axis=1,
                prepend=0.0,
            )
            expected = q_walk[act] * gaps[act]
            ratio = np.where(expected > 0, steps**2 / np.maximum(expected, 1e-300), 0.0)
            walk_w[act] = np.where(rob, (dof + 1.0) / (dof + ratio), 1.0)
    cov: FloatArray = np.linalg.inv(a).astype(np.float64)
    scale: FloatArray = np.sqrt(scale2).astype(np.float64)
    return mean, cov, scale


def _walk_level(walked: FloatArray, alpha: FloatArray) -> FloatArray:
    """The random walk's smoothed level ``K·α`` where ``K[i, j] = min(walked_i, walked_j)``.

    Both (P, N) in order of ``walked`` (nondecreasing along each row), so the product takes two
    cumulative sums instead of an N×N kernel: ``Σ_{m<=k} walked_m α_m + walked_k Σ_{m>k} α_m``.
    """
    tail = alpha.sum(axis=1, keepdims=True) - np.cumsum(alpha, axis=1)
    out: FloatArray = np.cumsum(walked * alpha, axis=1) + walked * tail
    return out


#: Row count from which a block's symmetric positive-definite systems are solved one patient at a
#: time by Cholesky (LAPACK ``potrf``/``potrs``) rather than by numpy's stacked LU: Cholesky's half
#: of the arithmetic outweighs the Python loop from about this size (on 250 stacked systems, about
#: twice as fast at 120 rows, slower below 24).
SPD_LOOP_ROWS = 24


def spd_solve(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``solve(a, b)`` for stacked symmetric positive-definite ``a`` (P, N, N).

    Cholesky per matrix for large N, numpy's stacked LU below ``SPD_LOOP_ROWS``; a matrix that is
    not numerically positive definite falls back to LU, so the result is the same solve either way.
    """
    if a.shape[1] < SPD_LOOP_ROWS:
        out: npt.NDArray[np.float32] = np.linalg.solve(a, b)
        return out
    potrf, potrs = lapack.get_lapack_funcs(("potrf", "potrs"), (a,))
    out = np.empty(b.shape, dtype=np.result_type(a, b))
    for p in range(a.shape[0]):
        # a[p] is symmetric, so its transpose (Fortran order, no copy) is the same matrix
        factor, info = potrf(a[p].T, lower=1, clean=0)
        if info == 0:
            out[p], info = potrs(factor, b[p], lower=1)
        if info != 0:
            out[p] = np.linalg.solve(a[p], b[p])
    return out


def validate_hyper(name: str, value: float) -> None:
    """Raise ``ValueError`` unless a hyperparameter is finite and > 0."""
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")


def _pair_log_lik(d2: FloatArray, var: FloatArray, dof: float) -> FloatArray:
    """Student-t log density (up to a constant) of squared differences ``d2`` with variance ``var``."""
    scale2 = var * (dof - 2.0) / dof
    out: FloatArray = -0.5 * np.log(scale2) - 0.5 * (dof + 1.0) * np.log1p(d2 / (dof * scale2))
    return out


def _neg_log_posterior(
    theta: FloatArray, d2: FloatArray, s2: FloatArray, gap: FloatArray, q0: float, dof: float
) -> float:
    log_k, log_q = float(theta[0]), float(theta[1])
    var = math.exp(2.0 * log_k) * s2 + q0 * math.exp(log_q) * gap
    nll = -float(np.sum(_pair_log_lik(d2, var, dof)))
    tau = priors()[("all", "hyper_log_sd")]
    return nll + 0.5 * (log_k**2 + log_q**2) / tau**2


@dataclass(frozen=True)
class Differences:
    """Variogram pairs of a batch: consecutive readings of each patient.

    ``d2``, ``s2`` and ``gap`` (shape (M,)) are the squared differences, ``s_i² + s_j²``
    (model-scale units²) and gaps (years); ``owner`` (shape (M,), ascending) the patient each pair
    belongs to, of ``n_patients``.
    """

    d2: FloatArray
    s2: FloatArray
    gap: FloatArray
    owner: npt.NDArray[np.intp]
    n_patients: int


def padded_differences(
    t: FloatArray,
    r: FloatArray,
    s: FloatArray,
    use: npt.NDArray[np.bool_],
    effect: FloatArray | None = None,
) -> Differences:
    """Consecutive-reading pairs of a batch held as padded (P, N) arrays.

    ``t`` days, ``r`` model-scale residuals, ``s`` measurement SDs, ``use`` which cells are
    readings to pair, ``effect`` optionally the treatment effect of the mean structure at each
    reading. Pairs less than ``MIN_PAIR_GAP_DAYS`` apart are left out: readings of the same week
    share their short-term state, so they understate the visit-to-visit noise the model means
    (Muntner 2015 contrasts the two). A pair across which the effect changes by more than half its
    measurement SD is left out too, because its difference then mostly measures how well the drug
    catalogue fits this patient, not noise or drift.
    """
    n_pat = t.shape[0]
    if t.shape[1] < 2:
        empty = np.empty(0)
        return Differences(empty, empty, empty, np.empty(0, dtype=np.intp), n_pat)
    order = np.argsort(np.where(use, t, np.inf), axis=1, kind="stable")

    def sort(a: FloatArray) -> FloatArray:
        out: FloatArray = np.take_along_axis(a, order, axis=1)
        return out

    ts, rs, ss = sort(t), sort(r), sort(s)
    both = np.take_along_axis(use, order, axis=1)
    dt = np.diff(ts, axis=1)
    pair_s2 = ss[:, 1:] ** 2 + ss[:, :-1] ** 2
    keep = both[:, 1:] & both[:, :-1]
    keep &= np.where(keep, dt, 0.0) >= MIN_PAIR_GAP_DAYS
    if effect is not None:
        keep &= np.diff(sort(effect), axis=1) ** 2 <= 0.25 * pair_s2
    owner = np.nonzero(keep)[0].astype(np.intp)
    return Differences(
        d2=(np.diff(rs, axis=1) ** 2)[keep],
        s2=pair_s2[keep],
        gap=dt[keep] / DAYS_PER_YEAR,
        owner=owner,
        n_patients=n_pat,
    )


def consecutive_differences(pairs: Sequence[tuple[FloatArray, ...]]) -> Differences:
    """``padded_differences`` of per-patient series ``(t, r, s)`` or ``(t, r, s, e)``."""
    width = max([2, *(entry[0].size for entry in pairs)])
    n_pat = len(pairs)
    t, r, s, e = (np.zeros((n_pat, width)) for _ in range(4))
    use = np.zeros((n_pat, width), dtype=bool)
    for i, entry in enumerate(pairs):
        k = entry[0].size
        t[i, :k], r[i, :k], s[i, :k], use[i, :k] = entry[0], entry[1], entry[2], True
        if len(entry) > 3:
            e[i, :k] = entry[3]
    with_effect = any(len(entry) > 3 for entry in pairs)
    return padded_differences(t, r, s, use, e if with_effect else None)


def estimate_noise_and_walk(
    diffs: Differences,
    *,
    walk_var_prior: float,
    dof: float,
) -> tuple[float, float]:
    """Empirical-Bayes noise multiplier and level random-walk variance from training readings.

    Under the local-level model the difference of two readings of one patient ``Δt`` years apart
    has variance ``k²(s_i² + s_j²) + q·Δt`` (measurement noise of both plus the walk between them;
    Harvey, *Forecasting, structural time series models and the Kalman filter*, 1989, 2.7: the
    variogram of a random walk plus noise). ``k`` (multiplier of the priors.csv measurement SD)
    and ``q`` are the posterior mode over every consecutive pair of the batch: Student-t
    differences (as the readings) and log-normal hyperpriors centred on priors.csv with log-SD
    ``hyper_log_sd``, so a small batch stays near the documented values and a large one speaks for
    itself. Only readings before each patient's cut-off enter, with the catalogue's drug effects
    removed at their population mean response. With pairs from fewer than ``MIN_EB_PATIENTS``
    patients (a patient calibrated alone, say) there is no population to learn from, and the
    priors.csv values are returned.

    Parameters
    ----------
    diffs : Differences
        The batch's consecutive-reading pairs (``padded_differences``).
    walk_var_prior : float
        priors.csv random-walk variance, model-scale units² per year (> 0).
    dof : float
        Student-t degrees of freedom (> 2).

    Returns
    -------
    k : float
        Multiplier of the measurement SD (dimensionless).
    q : float
        Random-walk variance, model-scale units² per year.
    """
    from scipy.optimize import minimize

    validate_hyper("walk_var_prior", walk_var_prior)
    if dof <= 2:
        raise ValueError(f"dof must be > 2, got {dof}")
    if np.unique(diffs.owner).size < MIN_EB_PATIENTS:
        return 1.0, walk_var_prior
    bound = _HYPER_LOG_BOUND
    res = minimize(
        _neg_log_posterior,
        np.zeros(2),
        args=(diffs.d2, diffs.s2, diffs.gap, walk_var_prior, dof),
        method="L-BFGS-B",
        bounds=[(-bound, bound), (-bound, bound)],
    )
    return math.exp(float(res.x[0])), walk_var_prior * math.exp(float(res.x[1]))


def _grid_log_posterior(
    diffs: Differences,
    dk: FloatArray,
    dq: FloatArray,
    *,
    k_batch: float,
    walk_var: float,
    dof: float,
) -> FloatArray:
    """Log posterior (P, G) of per-patient offsets ``dk``, ``dq`` (each (P, G), log scale)."""
    tau = priors()[("all", "hyper_log_sd")]
    post: FloatArray = -0.5 * (dk**2 + dq**2) / tau**2
    return _grid_log_lik(diffs, dk, dq, k_batch=k_batch, walk_var=walk_var, dof=dof, out=post)


def _grid_log_lik(
    diffs: Differences,
    dk: FloatArray,
    dq: FloatArray,
    *,
    k_batch: float,
    walk_var: float,
    dof: float,
    out: FloatArray | None = None,
) -> FloatArray:
    """Log likelihood (P, G) of each patient's pairs at offsets ``dk``, ``dq``, added to ``out``."""
    post: FloatArray = np.zeros(dk.shape) if out is None else out
    if diffs.d2.size == 0:
        return post
    starts = np.flatnonzero(np.r_[True, np.diff(diffs.owner) > 0])
    owners = diffs.owner[starts]
    ends = np.r_[starts[1:], diffs.d2.size]
    lo = 0
    while lo < starts.size:
        # whole patients per block, about _PAIR_CHUNK pairs, so a block reduces to its patients
        hi = max(lo + 1, int(np.searchsorted(ends, starts[lo] + _PAIR_CHUNK, side="right")))
        first, stop = int(starts[lo]), int(ends[hi - 1])
        who = diffs.owner[first:stop]
        k2 = k_batch**2 * np.exp(2.0 * dk[who])
        q = walk_var * np.exp(dq[who])
        d2, s2, gap = (a[first:stop, None] for a in (diffs.d2, diffs.s2, diffs.gap))
        ll = _pair_log_lik(d2, k2 * s2 + q * gap, dof)
        post[owners[lo:hi]] += np.add.reduceat(ll, starts[lo:hi] - first, axis=0)
        lo = hi
    return post


def without_largest_pair(diffs: Differences, *, k_batch: float, walk_var: float) -> Differences:
    """``diffs`` without each patient's most surprising pair, for patients with two or more.

    The pair whose squared difference is largest against the batch's variogram
    (``k²(s_i² + s_j²) + q·Δt``) is left out of the patient's own noise and walk estimate, so a single
    pair (a lasting step at the newest visit, one wrong reading) cannot set that patient's noise:
    with one reading 3 % below a series that varied by 0.1 %, the step would otherwise make every
    earlier reading look noisy and the forecast would discount the step itself.
    """
    return _pairs(diffs, ~_largest_pairs(diffs, k_batch=k_batch, walk_var=walk_var))


def _largest_pairs(diffs: Differences, *, k_batch: float, walk_var: float) -> npt.NDArray[np.bool_]:
    """Mask of the pairs ``without_largest_pair`` leaves out (one per patient with two or more)."""
    drop = np.zeros(diffs.d2.size, dtype=bool)
    if diffs.d2.size == 0:
        return drop
    ratio = diffs.d2 / (k_batch**2 * diffs.s2 + walk_var * diffs.gap)
    starts = np.flatnonzero(np.r_[True, np.diff(diffs.owner) > 0])
    counts = np.diff(np.r_[starts, diffs.d2.size])
    worst = np.maximum.reduceat(ratio, starts)
    tied = (ratio == np.repeat(worst, counts)) & (np.repeat(counts, counts) >= 2)
    # one pair per patient even when two tie
    first = np.flatnonzero(tied)
    if first.size:
        keep_first = np.r_[True, diffs.owner[first][1:] != diffs.owner[first][:-1]]
        drop[first[keep_first]] = True
    return drop


def _pairs(diffs: Differences, keep: npt.NDArray[np.bool_]) -> Differences:
    """The pairs of ``diffs`` where ``keep`` (same patients)."""
    return Differences(
        d2=diffs.d2[keep],
        s2=diffs.s2[keep],
        gap=diffs.gap[keep],
        owner=diffs.owner[keep],
        n_patients=diffs.n_patients,
    )


def prompting_readings(
    histories: Sequence[PatientHistory],
    var: str,
    t: FloatArray,
    own: npt.NDArray[np.bool_],
    cutoffs: FloatArray,
) -> npt.NDArray[np.bool_]:
    """Readings of ``var`` that prompted a treatment for it: taken at most ``PROMPT_WINDOW_DAYS``
    before a start (or a higher dose; not a refill) of a treatment with a catalogue effect on
    ``var``, that start on or before the patient's cut-off.

    Arrays (P, N) as the fit's rows (``t`` days, ``own`` the patient's own readings); a start
    after the cut-off is not known at it, so it backs up no reading (``prequential``).
    """
    out = np.zeros(t.shape, dtype=bool)
    for i, h in enumerate(histories):
        if not h.treatments:
            continue
        starts = [
            start
            for start, treatment, intensity in _decisions(tuple(h.treatments))
            if start <= cutoffs[i] and _acts_on(treatment, var, intensity)
        ]
        if not starts:
            continue
        lead = np.asarray(starts)[None, :] - t[i][:, None]
        out[i] = ((lead >= 0.0) & (lead <= PROMPT_WINDOW_DAYS)).any(axis=1) & own[i]
    return out


def _follows_prompting_reading(
    z: FloatArray,
    noise_var: FloatArray,
    used: npt.NDArray[np.bool_],
    index: npt.NDArray[np.bool_],
    level: FloatArray,
    local_weight: FloatArray,
) -> npt.NDArray[np.bool_]:
    """Patients whose newest reading prompted a treatment, stands at least two noise SDs from the
    mean of the readings before it, and moved the forecast: the local-level model, which carries
    at least a quarter of the forecast, ends nearer that reading than that mean. Arrays (P, N) in
    time order with ``used`` a prefix, as ``prequential.sort_rows`` gives them; ``level`` and
    ``local_weight`` (P,)."""
    n = used.sum(axis=1)
    last = np.maximum(n - 1, 0)
    rows = np.arange(z.shape[0])
    newest = z[rows, last]
    earlier = np.where(used & (np.arange(z.shape[1])[None, :] < last[:, None]), z, 0.0)
    before = earlier.sum(axis=1) / np.maximum(n - 1, 1)
    out: npt.NDArray[np.bool_] = (
        (n >= 2)
        & index[rows, last]
        & (local_weight >= 0.25)
        & (np.abs(newest - before) >= 2.0 * np.sqrt(noise_var[rows, last]))
        & (np.abs(level - newest) < np.abs(level - before))
    )
    return out


@functools.lru_cache(maxsize=4096)
def _decisions(
    exposures: tuple[TreatmentExposure, ...],
) -> tuple[tuple[float, str, str | None], ...]:
    """(start, treatment, intensity) of each course started or raised in dose (``merge_courses``'
    courses): a renewal at the same dose or less is no new decision. Cached: a patient's record
    is asked once per variable."""
    out = []
    dose: dict[str, float] = {}
    for exp, continues in merge_courses(exposures):
        if not continues or exp.dose > dose.get(exp.treatment, 0.0):
            out.append((exp.start, exp.treatment, exp.intensity))
        dose[exp.treatment] = exp.dose
    return tuple(out)


@functools.cache
def _acts_on(treatment: str, var: str, intensity: str | None) -> bool:
    return bool(effects_for(treatment, var, intensity))


def pooled_response(
    post_mean: FloatArray, post_var: FloatArray, prior_mean: FloatArray, prior_sd: FloatArray
) -> tuple[float, float] | None:
    """The batch's mean response multiplier and its spread, partially pooled with the catalogue's.

    Each patient's response as their readings alone say it (the Gaussian posterior divided by the
    prior: readings before and after treatment starts inform it, a course without later readings
    does not) is ``N(μ, τ² + v_i)``; ``μ`` (prior: the catalogue's mean 1 with the documented SD)
    and ``τ`` (the documented ``response_sd`` times a log-normal multiplier, as for noise) are the
    posterior mode on a grid. A spread needs more patients than a mean: with fewer than
    ``MIN_EB_PATIENTS`` patients carrying information about their response (their posterior
    variance under 90 % of the prior's) only ``μ`` is estimated and ``τ`` stays the documented
    SD; ``None`` (the catalogue's prior) with fewer than ``MIN_RESPONSE_PATIENTS``. A data source
    whose readings do not move when treatments start (a simulator without drug effects, or
    patients who do not take their drugs) thus forecasts smaller effects for courses that its
    readings have not yet seen.

    Parameters
    ----------
    post_mean, post_var : ndarray, shape (P,)
        Posterior mean and variance of each patient's response multiplier.
    prior_mean, prior_sd : ndarray, shape (P,)
        The prior the posterior was computed with.

    Returns
    -------
    (mean, sd) of the batch's response prior, or None.
    """
    informed, est, v = response_evidence(post_mean, post_var, prior_mean, prior_sd)
    n_informed = int(informed.sum())
    if n_informed < MIN_RESPONSE_PATIENTS:
        return None
    sd0 = float(np.median(prior_sd))
    tau_h = priors()[("all", "hyper_log_sd")]
    mus = np.linspace(-0.5, 2.5, 121)
    us = (
        np.linspace(-3.0 * tau_h, 3.0 * tau_h, 49) if n_informed >= MIN_EB_PATIENTS else np.zeros(1)
    )
    tau2 = (sd0 * np.exp(us)) ** 2
    var = tau2[None, :, None] + v[None, None, :]
    resid2 = (est[None, None, :] - mus[:, None, None]) ** 2
    post = -0.5 * (np.log(var) + resid2 / var).sum(axis=2)
    post += -0.5 * ((mus[:, None] - 1.0) / sd0) ** 2 - 0.5 * (us[None, :] / tau_h) ** 2
    i, j = np.unravel_index(int(np.argmax(post)), post.shape)
    return float(mus[i]), float(sd0 * math.exp(float(us[j])))


def response_evidence(
    post_mean: FloatArray, post_var: FloatArray, prior_mean: FloatArray, prior_sd: FloatArray
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """What each patient's readings alone say about their response multiplier.

    The Gaussian posterior divided by the prior: mean and variance of the likelihood, for the
    patients it informs (posterior variance under 90 % of the prior's).

    Returns
    -------
    informed : ndarray of bool, shape (P,)
    est, var : ndarray, shape (n_informed,)
    """
    prior_var = prior_sd**2
    informed = post_var < 0.9 * prior_var
    prec = 1.0 / post_var[informed] - 1.0 / prior_var[informed]
    est = (
        post_mean[informed] / post_var[informed] - prior_mean[informed] / prior_var[informed]
    ) / prec
    return informed, est, 1.0 / prec


def pooled_class_scales(
    est: FloatArray,
    var: FloatArray,
    shares: FloatArray,
    classes: Sequence[str],
    *,
    mean: float,
    spread: float,
    class_sd: float,
) -> dict[str, float]:
    """Each treatment class's mean response relative to the batch's, partially pooled.

    A patient's response as their readings say it (``response_evidence``: ``est``, ``var``) is a
    mix of the classes they take: ``est_i = mean + Σ_c shares_ic · δ_c + e_i`` with
    ``e_i ~ N(0, spread² + var_i)``, where ``shares_ic`` is class ``c``'s part of the patient's
    effect column (rows sum to 1), ``mean`` and ``spread`` the batch's pooled response
    (``pooled_response``) and ``δ_c`` how far class ``c``'s mean departs from it, with the prior
    ``δ_c ~ N(0, class_sd²)`` (priors.csv ``class_response_sd``). The batch's mean already holds
    what the patients say on average, so the departures are constrained to average zero over
    them (weighted as in the fit): they only share out that mean among the classes. One class
    alone, or classes every informed patient takes together, keep the batch's mean; classes move
    apart only as far as patients taking one without the other say they differ. A class that
    fewer than ``MIN_RESPONSE_PATIENTS`` informed patients take keeps the batch's mean. A class
    mean is not taken below zero (the catalogue's direction of effect is kept).

    Parameters
    ----------
    est, var : ndarray, shape (n,)
    shares : ndarray, shape (n, C)
    classes : sequence of str, length C
    mean, spread, class_sd : float

    Returns
    -------
    dict
        class → (batch mean + δ_c) / batch mean, for every class in ``classes``; all 1 when the
        batch's mean is not positive.
    """
    shares = np.asarray(shares, dtype=np.float64).reshape(est.size, len(classes))
    out = dict.fromkeys(classes, 1.0)
    free = np.flatnonzero((shares > 0.0).sum(axis=0) >= MIN_RESPONSE_PATIENTS)
    if free.size == 0 or mean <= 0.0:
        return out
    a = shares[:, free]
    w = 1.0 / (spread**2 + var)
    awt = (a * w[:, None]).T
    precision = np.eye(free.size) / class_sd**2 + awt @ a
    unconstrained = np.linalg.solve(precision, awt @ (est - mean))
    # the constraint Σ_i w_i shares_i · δ = 0, by the Gaussian conditional (Lagrange) step
    c = awt.sum(axis=1)
    pc = np.linalg.solve(precision, c)
    denom = float(c @ pc)
    delta = unconstrained - pc * float(c @ unconstrained) / denom if denom > 0 else unconstrained
    for k, d in zip(free, delta, strict=True):
        out[classes[int(k)]] = max(0.0, (mean + float(d)) / mean)
    return out


def _class_shares(
    var: str,
    histories: Sequence[PatientHistory],
    patients: FloatArray | npt.NDArray[np.intp],
    tt: FloatArray,
    column: FloatArray,
    mask: FloatArray,
    mean: FloatArray,
    cutoffs: FloatArray,
) -> tuple[list[str], FloatArray]:
    """Each class's part of each listed patient's effect column (least-squares, rows sum to 1)."""
    classes = sorted(
        {
            e.treatment
            for i in patients
            for e in histories[int(i)].treatments
            if _acts_on(e.treatment, var, e.intensity)
        }
    )
    shares = np.zeros((len(patients), len(classes)))
    for row, i in enumerate(patients):
        i = int(i)
        total = column[i] * mask[i]
        norm = float(total @ total)
        if norm <= 0.0:
            continue
        own = {e.treatment for e in histories[i].treatments}
        for k, c in enumerate(classes):
            if c not in own:
                continue
            only = {other: 0.0 for other in classes if other != c}
            part = _effect_matrix(
                var,
                histories[i].treatments,
                tt[i],
                mean[i, :1],
                mean[i, 1:2],
                mean[i, 2:3],
                readings(histories[i], var, float(cutoffs[i])),
                only,
            )[0][0]
            shares[row, k] = float((part * mask[i]) @ total) / norm
        total_share = shares[row].sum()
        if total_share > 0.0:
            shares[row] /= total_share
    return classes, shares


def robust_patient_noise_and_walk(
    diffs: Differences, *, k_batch: float, walk_var: float, dof: float
) -> tuple[FloatArray, FloatArray]:
    """``patient_noise_and_walk`` where no single pair moves a patient away from the batch.

    Each patient's estimate is made twice, with all their pairs and without their most surprising
    one (``without_largest_pair``), and the one nearer the batch's noise is kept: a patient's noise
    departs from the batch's only when more than one pair says so. Shapes as
    ``patient_noise_and_walk``.
    """
    validate_hyper("k_batch", k_batch)
    validate_hyper("walk_var", walk_var)
    dk, dq = _coarse_grid(diffs.n_patients)
    drop = _largest_pairs(diffs, k_batch=k_batch, walk_var=walk_var)
    post_all = _grid_log_posterior(diffs, dk, dq, k_batch=k_batch, walk_var=walk_var, dof=dof)
    # the coarse posterior without the largest pair is the full one less that pair's term
    post_cut = post_all - _grid_log_lik(
        _pairs(diffs, drop), dk, dq, k_batch=k_batch, walk_var=walk_var, dof=dof
    )
    k_all, q_all = _refine_grid(
        diffs, dk, dq, post_all, k_batch=k_batch, walk_var=walk_var, dof=dof
    )
    k_cut, q_cut = _refine_grid(
        _pairs(diffs, ~drop), dk, dq, post_cut, k_batch=k_batch, walk_var=walk_var, dof=dof
    )
    nearer = np.abs(np.log(k_cut / k_batch)) < np.abs(np.log(k_all / k_batch))
    return np.where(nearer, k_cut, k_all), np.where(nearer, q_cut, q_all)


def patient_noise_and_walk(
    diffs: Differences,
    *,
    k_batch: float,
    walk_var: float,
    dof: float,
) -> tuple[FloatArray, FloatArray]:
    """Each patient's own noise multiplier and walk variance, shrunk toward the batch's.

    The hierarchical empirical-Bayes step after ``estimate_noise_and_walk``: the same variogram
    likelihood restricted to one patient's consecutive readings, with independent log-normal
    priors centred on the batch's ``k`` and ``q`` (log-SD ``hyper_log_sd``). Patients whose
    readings are exactly repeated get little noise and little walk (so their own flat record, not
    the population slope, carries the forecast), patients whose readings scatter get more, and a
    patient with few readings keeps the batch values. Joint posterior mode of ``(log k, log q)``
    over ±3 prior SDs: a coarse grid (half an SD apart), then a fine one (an eighth) around its
    best point.

    Parameters
    ----------
    diffs : Differences
        The batch's consecutive-reading pairs (``padded_differences``), P patients.
    k_batch : float
        The batch's noise multiplier (> 0).
    walk_var : float
        The batch's random-walk variance, model-scale units² per year (> 0).
    dof : float
        Student-t degrees of freedom (> 2).

    Returns
    -------
    k : ndarray, shape (P,)
        Noise multipliers (dimensionless).
    q : ndarray, shape (P,)
        Random-walk variances, model-scale units² per year.
    """
    validate_hyper("k_batch", k_batch)
    validate_hyper("walk_var", walk_var)
    dk, dq = _coarse_grid(diffs.n_patients)
    post = _grid_log_posterior(diffs, dk, dq, k_batch=k_batch, walk_var=walk_var, dof=dof)
    return _refine_grid(diffs, dk, dq, post, k_batch=k_batch, walk_var=walk_var, dof=dof)


def _grid_offsets(
    centre_k: FloatArray, centre_q: FloatArray, step: float, half_width: float
) -> tuple[FloatArray, FloatArray]:
    """Grid of (log k, log q) offsets (P, G) around each patient's centre, within ±3 prior SDs."""
    tau = priors()[("all", "hyper_log_sd")]
    axis = np.arange(-half_width, half_width + 0.5 * step, step)
    ok, oq = (g.ravel()[None, :] for g in np.meshgrid(axis, axis, indexing="ij"))
    return (
        np.clip(centre_k + ok, -3.0 * tau, 3.0 * tau),
        np.clip(centre_q + oq, -3.0 * tau, 3.0 * tau),
    )


def _coarse_grid(n_pat: int) -> tuple[FloatArray, FloatArray]:
    """``patient_noise_and_walk``'s coarse grid: half a prior SD apart over ±3 SDs."""
    tau = priors()[("all", "hyper_log_sd")]
    zero = np.zeros((n_pat, 1))
    return _grid_offsets(zero, zero, 0.5 * tau, 3.0 * tau)


def _refine_grid(
    diffs: Differences,
    dk: FloatArray,
    dq: FloatArray,
    post: FloatArray,
    *,
    k_batch: float,
    walk_var: float,
    dof: float,
) -> tuple[FloatArray, FloatArray]:
    """From the coarse grid's posterior, the mode on a fine grid (an eighth of a prior SD apart)
    around each patient's best coarse point; as ``patient_noise_and_walk`` returns it."""
    tau = priors()[("all", "hyper_log_sd")]
    best = np.argmax(post, axis=1)[:, None]
    dk, dq = _grid_offsets(
        np.take_along_axis(dk, best, axis=1),
        np.take_along_axis(dq, best, axis=1),
        0.125 * tau,
        0.5 * tau,
    )
    post = _grid_log_posterior(diffs, dk, dq, k_batch=k_batch, walk_var=walk_var, dof=dof)
    best = np.argmax(post, axis=1)[:, None]
    k_out: FloatArray = k_batch * np.exp(np.take_along_axis(dk, best, axis=1)[:, 0])
    q_out: FloatArray = walk_var * np.exp(np.take_along_axis(dq, best, axis=1)[:, 0])
    return k_out, q_out


def glucose_offset(
    history: PatientHistory, fit_mean: FloatArray, until: float
) -> tuple[float, float]:
    """Posterior mean and SD of the patient's mean-minus-fasting glucose gap (mg/dL).

    Conjugate Gaussian update of the prior in priors.csv from each fasting glucose reading
    against the ADAG mean glucose of the HbA1c at that day (interpolated between HbA1c readings,
    the fitted trend outside them).
    """
    p = priors()
    t, g = readings(history, "glucose", until)
    prior_sd = p[("glucose", "offset_sd")]
    if g.size == 0:
        return GLUCOSE_OFFSET_MEAN, prior_sd
    a1c = fit_mean[0] + fit_mean[1] * t / DAYS_PER_YEAR
    ta, ya = readings(history, "hba1c", until)
    if ta.size:
        # within the span of HbA1c readings the readings themselves are the better reference
        order = np.argsort(ta)
        inside = (t >= ta.min()) & (t <= ta.max())
        a1c = np.where(inside, np.interp(t, ta[order], ya[order]), a1c)
    gap = glycaemia.mean_glucose(a1c) - g
    var = (p[("glucose", "noise_cv")] * g) ** 2 + (
        glycaemia.ADAG_SLOPE * p[("hba1c", "noise_cv")] * a1c
    ) ** 2
    prec = 1.0 / prior_sd**2 + float((1.0 / var).sum())
    mean = (GLUCOSE_OFFSET_MEAN / prior_sd**2 + float((gap / var).sum())) / prec
    return mean, math.sqrt(1.0 / prec)


def _context(history: PatientHistory, until: float) -> dict[str, float]:
    ctx: dict[str, float] = {}
    for name in ("hdl", "triglycerides", "height", "uacr", "total_chol", "ldl"):
        t, y = readings(history, name, until)
        if y.size:
            ctx[name] = float(y[np.argmax(t)])
    return ctx


#: The slope estimate from a patient's readings alone is taken with a slope prior this many times
#: wider than the documented one (nearly flat, numerically safe).
_FLAT_SLOPE_FACTOR = 100.0


def _slope_prior_scale(
    t: FloatArray,
    z: FloatArray,
    effect: FloatArray,
    sd: FloatArray,
    use: npt.NDArray[np.bool_],
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    walk_var: FloatArray,
    dof: float,
) -> float:
    """Empirical-Bayes multiplier of the slope prior's SD for one variable of a batch.

    Each patient's slope from their own readings (``prequential.one_step_scores``'s filter with a
    nearly flat slope prior and a constant slope), then ``prequential.slope_prior_scale``.
    """
    flat = prior_sd[:, :3].copy()
    flat[:, 1] *= _FLAT_SLOPE_FACTOR
    state: list[FloatArray] = []
    prequential.one_step_scores(
        t,
        z,
        effect,
        sd**2,
        use.astype(np.float64),
        prior_mean[:, :3],
        flat,
        prior_mean[:, 2],
        walk_var=walk_var,
        slope_walk_var=0.0,
        dof=dof,
        final_state=state,
    )
    return prequential.slope_prior_scale(
        state[0][:, 1],
        np.where(use.any(axis=1), state[1][:, 1, 1], np.nan),
        prior_mean[:, 1],
        prior_sd[:, 1],
        hyper_log_sd=priors()[("all", "hyper_log_sd")],
        min_patients=MIN_EB_PATIENTS,
    )


def _remake_columns(
    var: str,
    histories: Sequence[PatientHistory],
    which: npt.NDArray[np.bool_],
    tt: FloatArray,
    mask: FloatArray,
    mean: FloatArray,
    cutoffs: FloatArray,
    scales: Mapping[str, float],
    x: FloatArray,
    fit_dependent: npt.NDArray[np.bool_],
) -> None:
    """Make the effect column ``x[i, :, 2]`` of each patient in ``which`` again, at their current
    fit and the class scales; ``fit_dependent[i]`` says whether it will need making again."""
    for i in map(int, np.flatnonzero(which)):
        h = histories[i]
        column, fit_dependent[i] = _effect_matrix(
            var,
            h.treatments,
            tt[i],
            mean[i, :1],
            mean[i, 1:2],
            mean[i, 2:3],
            readings(h, var, float(cutoffs[i])),
            scales,
        )
        x[i, :, 2] = column[0] * mask[i]


def calibrate_batch(
    histories: Sequence[PatientHistory],
    *,
    until: Sequence[float] | float = 0.0,
    dof: float | None = None,
    noise_prior_dof: float | None = None,
    empirical_bayes: bool = True,
) -> list[Calibration]:
    """Calibrate many patients at once (stacked IRLS per variable).

    Parameters
    ----------
    histories : sequence of PatientHistory
    until : float or sequence of float
        Use readings at or before this day (relative to each reference date); one per patient or
        one for all.
    dof, noise_prior_dof : float, optional
        Override the Student-t degrees of freedom and the noise-scale prior's degrees of freedom
        of priors.csv (a very large pair gives the Gaussian fit with the prior noise, which the
        speed benchmark uses to check the naive solver against this one).

    Returns
    -------
    list of Calibration, in input order.
    """
    n_pat = len(histories)
    if n_pat == 0:
        return []
    cutoffs = np.broadcast_to(np.asarray(until, dtype=np.float64), (n_pat,))
    dof = noise_dof() if dof is None else dof
    prior_dof = priors()[("all", "noise_prior_dof")] if noise_prior_dof is None else noise_prior_dof
    fits: list[dict[str, VariableFit]] = [{} for _ in range(n_pat)]
    notes: list[list[str]] = [[] for _ in range(n_pat)]
    for var in FIT_VARIABLES:
        data = [_rows(h, var, float(c)) for h, c in zip(histories, cutoffs, strict=True)]
        pri = [prior_for(h, var, float(c)) for h, c in zip(histories, cutoffs, strict=True)]
        width = max(1, max(d.t.size for d in data))
        tt = np.zeros((n_pat, width))
        z = np.zeros((n_pat, width))
        sd = np.ones((n_pat, width))
        mask = np.zeros((n_pat, width))
        flag = np.zeros((n_pat, width))
        for i, d in enumerate(data):
            k = d.t.size
            tt[i, :k], z[i, :k], sd[i, :k], mask[i, :k], flag[i, :k] = d.t, d.z, d.sd, 1.0, d.flag
        # the patient's own readings (visits), not fasting-glucose proxies for HbA1c
        n_own = ((mask > 0) & (flag == 0)).sum(axis=1)
        floor = noise_floor(var)
        m0 = np.stack([p[0] for p in pri])
        s0 = np.stack([p[1] for p in pri])
        mean = m0.copy()
        cov = np.zeros((n_pat, 4, 4))
        scale = np.ones(n_pat)
        has_tx = [
            any(_acts_on(e.treatment, var, e.intensity) for e in h.treatments) for h in histories
        ]
        # treatment effects depend on the fit only through trend-based baselines: iterate
        # until the effect column stops changing
        x = np.zeros((n_pat, width, 4))
        x[:, :, 0] = 1.0
        x[:, :, 1] = tt / DAYS_PER_YEAR
        x[:, :, 3] = -flag / glycaemia.ADAG_SLOPE
        x *= mask[..., None]
        zc = z.copy()
        for i, h in enumerate(histories):
            if h.treatments:
                zc[i] -= body.coupled_effect(var, h.treatments, tt[i])
        zc *= mask
        t_end = np.where(mask > 0, tt, -np.inf).max(axis=1, initial=-np.inf)
        back = np.where(mask > 0, (t_end[:, None] - tt) / DAYS_PER_YEAR, 0.0)
        k_noise, walk_var = 1.0, priors()[(var, "rw_var")]
        k_each = np.ones(n_pat)
        class_scale: dict[str, float] = {}
        walk_each = np.full(n_pat, walk_var)
        sd_fit = sd
        moved = np.ones(n_pat, dtype=bool)
        # a column whose baselines all come from readings or the catalogue does not depend on
        # the fit: it is computed once
        fit_dependent = np.ones(n_pat, dtype=bool)
        for it in range(_OUTER_ITERATIONS):
            previous = x[:, :, 2].copy()
            _remake_columns(
                var, histories, np.asarray(has_tx) & moved & fit_dependent, tt, mask, mean,
                cutoffs, class_scale, x, fit_dependent,
            )  # fmt: skip
            if it > 0:
                # only a patient whose effect column moved needs solving again: the others'
                # inputs are unchanged, so their solution would be the same
                moved = np.any(np.abs(x[:, :, 2] - previous) > 1e-6, axis=1)
                if it == 1 and empirical_bayes and any(has_tx):
                    pooled = pooled_response(mean[:, 2], cov[:, 2, 2], m0[:, 2], s0[:, 2])
                    if pooled is not None:
                        informed, est, est_var = response_evidence(
                            mean[:, 2], cov[:, 2, 2], m0[:, 2], s0[:, 2]
                        )
                        classes, shares = _class_shares(
                            var, histories, np.flatnonzero(informed), tt, x[:, :, 2], mask,
                            mean, cutoffs,
                        )  # fmt: skip
                        class_scale = pooled_class_scales(
                            est,
                            est_var,
                            shares,
                            classes,
                            mean=pooled[0],
                            spread=pooled[1],
                            class_sd=priors()[("all", "class_response_sd")],
                        )
                        # the batch's response prior and class means: every treated patient's
                        # column is made again and solved again
                        m0[:, 2], s0[:, 2] = pooled
                        _remake_columns(
                            var, histories, np.asarray(has_tx), tt, mask, mean, cutoffs,
                            class_scale, x, fit_dependent,
                        )  # fmt: skip
                        moved |= np.asarray(has_tx)
                if not moved.any():
                    break
            if it == 0 and empirical_bayes:
                # drug effects at the population mean response are mean structure, not walk
                resid = zc - x[:, :, 2]
                own = (mask > 0) & (flag == 0)
                diffs = padded_differences(tt, resid, sd, own, x[:, :, 2])
                k_noise, walk_var = estimate_noise_and_walk(
                    diffs,
                    walk_var_prior=priors()[(var, "rw_var")],
                    dof=dof,
                )
                k_each, walk_each = robust_patient_noise_and_walk(
                    diffs, k_batch=k_noise, walk_var=walk_var, dof=dof
                )
                # fewer readings than MIN_READINGS: the batch's values, like the other priors
                sparse = n_own < MIN_READINGS
                k_each = np.maximum(np.where(sparse, k_noise, k_each), floor)
                walk_each = np.where(sparse, walk_var, walk_each)
                sd_fit = np.where(flag == 0, sd * k_each[:, None], sd)
                s0[:, 1] *= _slope_prior_scale(
                    tt,
                    zc,
                    x[:, :, 2],
                    sd_fit,
                    own & (n_own >= MIN_READINGS)[:, None],
                    m0,
                    s0,
                    walk_each,
                    dof,
                )
            idx = np.flatnonzero(moved)
            solved = solve_batch(
                x[idx],
                zc[idx],
                sd_fit[idx],
                mask[idx],
                m0[idx],
                s0[idx],
                dof=dof,
                prior_dof=prior_dof,
                age_years=back[idx],
                walk_var=walk_each[idx],
                slope_walk_var=priors()[(var, "slope_rw_var")],
            )
            mean[idx], cov[idx], scale[idx] = solved
            if not any(has_tx):
                break
        own = (mask > 0) & (flag == 0)
        k_floor = np.maximum(k_each, floor)
        shift = (priors()[("all", "shift_prob")], priors()[("all", "shift_scale")])
        index = prompting_readings(histories, var, tt, own, cutoffs)
        ts, used, (zs, es, vs, index_s) = prequential.sort_rows(
            tt,
            own.astype(np.float64),
            zc,
            x[:, :, 2],
            (sd * k_floor[:, None]) ** 2,
            index.astype(np.float64),
        )
        sorted_index = index_s > 0
        index_shift = prequential.DEFAULT_INDEX_SHIFT
        # the readings as the level models see them: treatment effects removed, in time order
        level_z, level_var = zs - mean[:, 2:3] * es, np.where(used, vs, 1.0)
        level_readings = (ts, level_z, level_var, used)
        if empirical_bayes:
            shift = prequential.estimate_shift(
                *level_readings,
                walk_var=walk_each,
                dof=dof,
                default=shift,
                min_patients=MIN_EB_PATIENTS,
                index=sorted_index,
            )
            index_shift = prequential.estimate_index_shift(
                *level_readings,
                sorted_index,
                walk_var=walk_each,
                dof=dof,
                shift=shift,
                min_patients=MIN_EB_PATIENTS,
            )
        score_s, score_l, ll_mean, ll_var = prequential.one_step_scores(
            tt,
            zc,
            x[:, :, 2],
            (sd * k_floor[:, None]) ** 2,
            own.astype(np.float64),
            m0[:, :3],
            s0[:, :3],
            mean[:, 2],
            walk_var=walk_each,
            slope_walk_var=priors()[(var, "slope_rw_var")],
            dof=dof,
            shift_prob=shift[0],
            shift_scale=shift[1],
            index=index,
            index_shift=index_shift,
        )
        # the steady-level model: the local-level filter without the walk
        score_c, st_mean, st_var = prequential.local_level_scores(
            *level_readings,
            walk_var=np.zeros_like(walk_each),
            shift_prob=shift[0],
            shift_scale=shift[1],
            dof=dof,
            index=sorted_index,
            index_shift=index_shift,
        )
        log_scores = np.stack([score_s, score_l, score_c], axis=1)
        scored = n_own >= 2
        mixing = (
            prequential.batch_mixing(log_scores, scored)
            if empirical_bayes
            else np.asarray(prequential.DEFAULT_MIXING)
        )
        post = prequential.posterior_weights(log_scores, mixing)
        weight = np.where(n_own > 0, post[:, 0], 1.0)
        steady_weight = np.where(n_own > 0, post[:, 2], 0.0)
        followed = _follows_prompting_reading(
            level_z,
            level_var,
            used,
            sorted_index,
            ll_mean,
            1.0 - weight - steady_weight,
        )
        for i, d in enumerate(data):
            n_obs = int(n_own[i])
            left_out = implausible_note(histories[i], var, float(cutoffs[i]))
            if left_out:
                notes[i].append(left_out)
            if followed[i]:
                notes[i].append(
                    f"{var}: the newest reading prompted a treatment for it, so the forecast "
                    "takes its change as lasting rather than as noise"
                )
            if var == "hba1c" and not d.flag.any():
                o_mean, o_sd = glucose_offset(histories[i], mean[i], float(cutoffs[i]))
                mean[i, 3], cov[i, 3, :], cov[i, :, 3] = o_mean, 0.0, 0.0
                cov[i, 3, 3] = o_sd**2
            fallback = n_obs < MIN_READINGS
            if d.window:
                notes[i].append(
                    f"{var}: readings averaged into {n_obs} visits of {d.window:g} day(s) for the fit"
                )
            if scale[i] * k_each[i] > MISFIT_SCALE and n_obs >= MIN_READINGS:
                notes[i].append(
                    f"{var}: readings scatter {scale[i] * k_each[i]:.1f}x the expected measurement noise around "
                    "the fitted trend; the patient may be changing faster than the model allows"
                )
            if fallback:
                notes[i].append(
                    f"{var}: {n_obs} reading(s); level and slope lean on the population prior"
                )
            fits[i][var] = VariableFit(
                variable=var,
                mean=mean[i],
                cov=cov[i],
                prior_mean=m0[i],
                prior_sd=s0[i],
                noise_scale=max(float(scale[i] * k_each[i]), floor),
                n_obs=n_obs,
                t_last=float(d.t.max()) if d.t.size else float(cutoffs[i]),
                fallback=fallback,
                walk_var=float(walk_each[i]),
                weight=float(weight[i]),
                local_level=float(ll_mean[i]),
                local_level_var=float(ll_var[i]),
                local_noise_scale=float(k_floor[i]),
                steady_weight=float(steady_weight[i]),
                steady_level=float(st_mean[i]),
                steady_level_var=float(st_var[i]),
                class_scale=class_scale,
            )
    return [
        Calibration(
            history=h,
            until=float(c),
            fits=fits[i],
            notes=tuple(notes[i]),
            context=_context(h, float(c)),
        )
        for i, (h, c) in enumerate(zip(histories, cutoffs, strict=True))
    ]


def calibrate(history: PatientHistory, *, until: float = 0.0) -> Calibration:
    """Calibrate one patient on readings at or before day ``until``; see ``calibrate_batch``."""
    return calibrate_batch([history], until=until)[0]
