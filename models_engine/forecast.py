"""Forecasts a calibrated twin: trajectories with 80 %/95 % bands, PREVENT risk and event odds.

Posterior parameter samples (Laplace), a local-trend discrepancy and measurement noise are drawn
once per forecast as common random numbers (``Draws``), so forecasts of different plans on the
same draws differ only by the plans. Everything is vectorised over samples; the
trajectories are closed-form solutions of the sub-models' linear right-hand sides, so there is no
time-stepping error (``bench/twin_speed.py`` reports the check against ``solve_ivp``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models_engine.calibration import (
    DAYS_PER_YEAR,
    FIT_VARIABLES,
    LOG_VARIABLES,
    Calibration,
    VariableFit,
    effect_matrix,
    from_model_scale,
    observation_sd,
    priors,
    readings,
)
from models_engine.history import VARIABLE_UNITS, FloatArray, TreatmentExposure
from models_engine.physiology import body, glycaemia, lipids, renal
from models_engine.treatments import (
    PlanItem,
    describe,
    effects_for,
    label_for,
    onset,
    strength,
    validate_plan,
)

#: Forecast variables: the calibrated ones plus fasting glucose derived from HbA1c.
FORECAST_VARIABLES: tuple[str, ...] = (*FIT_VARIABLES, "glucose")
#: Treatment classes that count as blood-pressure treatment for PREVENT.
BP_CLASSES = frozenset({"thiazide", "ace_inhibitor", "arb", "ccb", "beta_blocker", "loop_diuretic"})
#: Typical HDL and triglycerides (mg/dL) used when the record has none (NHANES adult means, approx.).
DEFAULT_HDL = 50.0
DEFAULT_TRIGLYCERIDES = 130.0
#: preventr's valid input ranges (R/helpers.R; twin-model.md §7): inputs are clamped into them.
PREVENT_RANGES: dict[str, tuple[float, float]] = {
    "sbp": (90.0, 180.0),
    "total_chol": (130.0, 320.0),
    "hdl": (20.0, 100.0),
    "egfr": (15.0, 140.0),
    "bmi": (18.5, 39.9),
    "hba1c": (4.5, 15.0),
}
PREVENT_AGE = (30.0, 79.0)
#: Lowest fasting glucose a forecast reports, mg/dL: a physical floor (the lower end of the
#: measurable range in ``physiology/hba1c.py``), reached only by implausible HbA1c records.
GLUCOSE_FLOOR = 20.0

RiskFn = Callable[..., Mapping[str, Any]]


def validate_horizon(years: float) -> None:
    """Raise ``ValueError`` unless the horizon is within (0, 30] years."""
    if not (0.0 < years <= 30.0):
        raise ValueError(f"horizon_years must be in (0, 30], got {years}")


def validate_samples(n: int) -> None:
    """Raise ``ValueError`` unless 10 <= n_samples <= 100000."""
    if not (10 <= n <= 100_000):
        raise ValueError(f"n_samples must be within 10-100000, got {n}")


@dataclass(frozen=True)
class Draws:
    """Common random numbers for one forecast grid: shared by every plan compared on it."""

    theta: dict[str, FloatArray]
    walk: dict[str, FloatArray]
    slope_walk: dict[str, FloatArray]
    noise: dict[str, FloatArray]
    #: Per variable, shape (n_samples,): stratified uniforms in (0, 1) in random order; a sample
    #: whose value is at least the fit's structural weight is drawn from the local-level model.
    pick: dict[str, FloatArray] = field(default_factory=dict)

    def picks(self, variable: str) -> FloatArray:
        """``pick[variable]``, or evenly spaced uniforms when these draws were made without it."""
        if variable in self.pick:
            return self.pick[variable]
        m = next(iter(self.theta.values())).shape[0]
        out: FloatArray = (np.arange(m) + 0.5) / m
        return out

    @classmethod
    def make(cls, n_samples: int, n_times: int, seed: int | np.random.Generator = 0) -> Draws:
        """Standard normal parameter draws (n_samples, 4), walk increments and noise (n_samples, n_times).

        Antithetic pairs (Hammersley & Morton, *Proc. Camb. Phil. Soc.* 52:449, 1956; Glasserman,
        *Monte Carlo Methods in Financial Engineering*, 2003, sec. 4.2): the second half of the
        samples is the first half negated, with the same model pick. Where a forecast is linear in
        these normals (levels, slopes, walks, noise, responses), each model's samples are then
        symmetric about its mean, and a monotone transform (LDL's log scale) keeps that for the
        median: the median shown and the bands carry less simulation error than independent
        draws of the same count (a test measures it). With an odd count the last sample has no
        partner.

        A sample's measurement error is one draw for the whole grid. The bands are for a new
        reading at each time on its own, and each time's samples have the error's full spread;
        sharing the draw across times makes the simulation error of neighbouring months' bands
        and median the same, so they form smooth curves instead of jagged ones (on the test
        patients the bands' month-to-month jitter fell 3-7 times, the median's 2-3 times). The
        observed samples are therefore not a simulated series of readings; nothing in the twin
        reads them as one (event probabilities and risks use the true values).
        """
        rng = np.random.default_rng(seed)
        half = (n_samples + 1) // 2

        def paired(x: FloatArray) -> FloatArray:
            out: FloatArray = np.concatenate([x, -x])[:n_samples]
            return out

        theta, walk, slope_walk, noise = {}, {}, {}, {}
        for v in FORECAST_VARIABLES:
            theta[v] = paired(rng.standard_normal((half, 4)))
            walk[v] = paired(rng.standard_normal((half, n_times)))
            slope_walk[v] = paired(rng.standard_normal((half, n_times)))
            # the Student-t likelihood is the calibration's guard against gross errors; a new
            # reading's spread is the measured within-person SD (priors.csv), taken as normal;
            # one draw per sample for every time (see above)
            noise[v] = np.repeat(paired(rng.standard_normal((half, 1))), n_times, axis=1)
        # drawn after the others, so the earlier streams are those of draws made without it;
        # stratified over the pairs, both members of a pair from the same model
        pick = {
            v: np.concatenate([(rng.permutation(half) + 0.5) / half] * 2)[:n_samples]
            for v in FORECAST_VARIABLES
        }
        return cls(theta=theta, walk=walk, slope_walk=slope_walk, noise=noise, pick=pick)


@dataclass(frozen=True)
class VariableForecast:
    """One variable's forecast: ``true`` samples (n_samples, n) and bands for a new reading (n,)."""

    variable: str
    unit: str
    true: FloatArray
    observed: FloatArray
    median: FloatArray
    lo80: FloatArray
    hi80: FloatArray
    lo95: FloatArray
    hi95: FloatArray

    def to_dict(self) -> dict[str, object]:
        """JSON-able bands (samples are left out)."""
        return {
            "unit": self.unit,
            "median": self.median.tolist(),
            "lo80": self.lo80.tolist(),
            "hi80": self.hi80.tolist(),
            "lo95": self.lo95.tolist(),
            "hi95": self.hi95.tolist(),
        }


@dataclass(frozen=True)
class Forecast:
    """A patient's forecast on a day grid ``t_days`` (relative to the reference date)."""

    patient_id: str
    t_days: FloatArray
    variables: dict[str, VariableForecast]
    risk_years: FloatArray = field(default_factory=lambda: np.empty(0))
    risk: dict[str, FloatArray] = field(default_factory=dict)
    event_probability: dict[str, FloatArray] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def years(self) -> FloatArray:
        """Years from the forecast start."""
        out: FloatArray = (self.t_days - self.t_days[0]) / DAYS_PER_YEAR
        return out

    def at(self, variable: str, t_day: float) -> FloatArray:
        """Predictive samples of a new reading of ``variable`` at day ``t_day``.

        The true value is interpolated between the grid days around ``t_day``; the measurement
        error is that of the nearer grid day's samples, moved with the true value (added, or for
        LDL's multiplicative error, multiplied). Interpolating the two days' readings instead
        would average their errors, which shrinks the spread wherever the two days' errors are
        drawn independently (by up to 1/√2 midway); this holds whatever the draws share.
        """
        f = self.variables[variable]
        j = float(np.interp(t_day, self.t_days, np.arange(self.t_days.size)))
        lo = int(np.floor(j))
        hi = min(lo + 1, self.t_days.size - 1)
        frac = j - lo
        true = f.true[:, lo] + frac * (f.true[:, hi] - f.true[:, lo])
        k = lo if frac <= 0.5 else hi
        out: FloatArray
        if variable in LOG_VARIABLES:
            out = true * (f.observed[:, k] / f.true[:, k])
        else:
            out = np.maximum(true + (f.observed[:, k] - f.true[:, k]), 0.0)
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON-able lists."""
        return {
            "patient_id": self.patient_id,
            "t_days": self.t_days.tolist(),
            "variables": {k: v.to_dict() for k, v in self.variables.items()},
            "risk_years": self.risk_years.tolist(),
            "risk": {
                k: [x if np.isfinite(x) else None for x in v.tolist()] for k, v in self.risk.items()
            },
            "event_probability": {k: v.tolist() for k, v in self.event_probability.items()},
            "notes": list(self.notes),
        }


def time_grid(start: float, horizon_years: float, step_days: float) -> FloatArray:
    """Days from ``start`` to ``start + horizon`` every ``step_days`` (inclusive)."""
    validate_horizon(horizon_years)
    n = round(horizon_years * DAYS_PER_YEAR / step_days) + 1
    out: FloatArray = start + np.arange(n, dtype=np.float64) * step_days
    return out


def plan_exposures(
    cal: Calibration, plan: Sequence[PlanItem]
) -> tuple[tuple[TreatmentExposure, ...], tuple[str, ...]]:
    """Current care continued plus the plan's items, and notes on what the plan does to courses
    the patient is already on.

    A plan item of a class the patient already takes at its start is a change of that course
    (``calibration.merge_courses``: same pretreatment baseline, new dose) only when it gives more
    (a higher dose, or for a statin a higher intensity): "add an ACE inhibitor" for a patient on a
    double-dose ACE inhibitor changes nothing, rather than silently halving the dose. Each such
    item is named in the notes. A stop item (``action="stop"``) ends every course of its class
    running on its start day (``onset`` then lets the effect wear off); it is named in the notes
    too, also when the patient does not take the class then.
    """
    validate_plan(plan)
    current = cal.history.treatments
    out = list(current)
    notes: list[str] = []
    for item in plan:
        if item.stops:
            out, note = _stop_class(out, item)
            notes.append(note)
            continue
        running = [
            e
            for e in current
            if e.treatment == item.intervention
            and e.start <= item.start
            and (e.stop is None or e.stop > item.start)
        ]
        if running:
            course = max(running, key=lambda e: e.start)
            label = label_for(item.intervention)
            if strength(item) <= strength(course):
                notes.append(
                    f"{label}: already taken ({describe(course)}); the plan's {describe(item)} "
                    "adds nothing and is left out"
                )
                continue
            notes.append(
                f"{label}: already taken ({describe(course)}); the plan raises it to {describe(item)}"
            )
        out.append(item.as_exposure())
    return tuple(out), tuple(notes)


def _stop_class(
    exposures: Sequence[TreatmentExposure], item: PlanItem
) -> tuple[list[TreatmentExposure], str]:
    """``exposures`` with every course of ``item``'s class ended on day ``item.start`` (courses
    recorded to start later are dropped), and a note saying what was stopped."""
    out: list[TreatmentExposure] = []
    ended: list[TreatmentExposure] = []
    for e in exposures:
        if e.treatment != item.intervention or (e.stop is not None and e.stop <= item.start):
            out.append(e)
            continue
        ended.append(e)
        if e.start < item.start:
            out.append(TreatmentExposure(e.treatment, e.start, item.start, e.dose, e.intensity))
    label = label_for(item.intervention)
    if not ended:
        return out, f"{label}: not taken on the day the plan stops it; nothing to stop"
    courses = ", ".join(describe(e) for e in ended)
    return out, f"{label}: stopped ({courses}); its effect wears off as it came on"


def exposures_under(cal: Calibration, plan: Sequence[PlanItem]) -> tuple[TreatmentExposure, ...]:
    """Current care continued, plus the plan's items (see ``plan_exposures``)."""
    return plan_exposures(cal, plan)[0]


def simulate(
    cal: Calibration,
    t: FloatArray,
    exposures: Sequence[TreatmentExposure],
    draws: Draws,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """True and observed samples of every forecast variable on day grid ``t``.

    Parameters
    ----------
    cal : Calibration
    t : ndarray, shape (n,)
        Days relative to the reference date.
    exposures : sequence of TreatmentExposure
        All treatment periods (history and plan).
    draws : Draws
        Common random numbers, shapes (m, 4) and (m, n).

    Returns
    -------
    dict
        variable → (true, observed), each ndarray of shape (m, n) in canonical units.
    """
    p = priors()
    out: dict[str, tuple[FloatArray, FloatArray]] = {}
    hba1c_theta: FloatArray | None = None
    for v in FIT_VARIABLES:
        fit = cal.fits[v]
        chol = np.linalg.cholesky(fit.cov + 1e-12 * np.eye(4))
        theta = fit.mean + draws.theta[v] @ chol.T
        level, slope, resp = theta[:, 0], theta[:, 1], theta[:, 2]
        z = level[:, None] + slope[:, None] * (t / DAYS_PER_YEAR)[None, :]
        inputs = body.coupled_effect(v, exposures, t)[None, :] + np.zeros((theta.shape[0], 1))
        if any(effects_for(e.treatment, v, e.intensity) for e in exposures):
            inputs = inputs + resp[:, None] * effect_matrix(
                v,
                exposures,
                t,
                level,
                slope,
                resp,
                readings(cal.history, v, cal.until),
                fit.class_scale,
            )
        q_walk, q_slope = fit.walk_variances()
        z = (
            z
            + inputs
            + local_trend(t, fit.t_last, draws.walk[v], draws.slope_walk[v], q_walk, q_slope)
        )
        kappa: FloatArray | float = fit.noise_scale
        local, steady = component_samples(fit, draws.picks(v))
        if local.any():
            # the local-level model's samples: its level now, the same treatment inputs, its walk
            z_local = (
                fit.local_level
                + np.sqrt(fit.local_level_var) * draws.theta[v][:, :1]
                + inputs
                + local_trend(t, fit.t_last, draws.walk[v], draws.slope_walk[v], q_walk, 0.0)
            )
            z = np.where(local[:, None], z_local, z)
        if steady.any():
            # the steady-level model's samples: its level, the same treatment inputs, no walk
            z_steady = (
                fit.steady_level + np.sqrt(fit.steady_level_var) * draws.theta[v][:, :1] + inputs
            )
            z = np.where(steady[:, None], z_steady, z)
        if local.any() or steady.any():
            kappa = np.where(local | steady, fit.local_noise_scale, fit.noise_scale)[:, None]
        true = from_model_scale(v, z)
        if v == "egfr":
            true = np.maximum(true, renal.EGFR_FLOOR)
        noise = kappa * observation_sd(v, true) * draws.noise[v]
        # every forecast variable is a positive quantity; a reading's band stops at zero
        observed = from_model_scale(v, z + noise) if v == "ldl" else np.maximum(true + noise, 0.0)
        out[v] = (true, observed)
        if v == "hba1c":
            hba1c_theta = theta
    assert hba1c_theta is not None
    offset = hba1c_theta[:, 3:4]
    g_true = np.maximum(glycaemia.fasting_glucose(out["hba1c"][0], offset), GLUCOSE_FLOOR)
    g_sd = cal.fits["hba1c"].noise_scale * p[("glucose", "noise_cv")] * g_true
    out["glucose"] = (g_true, np.maximum(g_true + g_sd * draws.noise["glucose"], 0.0))
    return out


def component_samples(
    fit: VariableFit, pick: FloatArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which samples (shape of ``pick``) come from the local-level and the steady-level model.

    The stratified uniforms ``pick`` split the samples in the posterior model probabilities
    (``prequential``): below ``fit.weight`` the structural model, then a share ``steady_weight``
    the steady-level model and the rest, ``1 − weight − steady_weight``, the local-level model.
    A model without a level gives its samples to the structural one.
    """
    none = np.zeros(pick.shape, dtype=bool)
    cut = fit.weight + fit.steady_weight
    steady = (pick >= fit.weight) & (pick < cut) if np.isfinite(fit.steady_level) else none
    local = pick >= cut if np.isfinite(fit.local_level) and cut < 1.0 else none
    return local, steady


def local_samples(fit: VariableFit, pick: FloatArray) -> npt.NDArray[np.bool_]:
    """Which samples (shape of ``pick``) come from the local-level model (``component_samples``)."""
    return component_samples(fit, pick)[0]


def local_trend(
    t: FloatArray,
    t_last: float,
    walk: FloatArray,
    slope_walk: FloatArray,
    walk_var: float,
    slope_walk_var: float,
) -> FloatArray:
    """Samples of the local-trend discrepancy after the last reading (zero before it).

    Parameters
    ----------
    t : ndarray, shape (n,)
        Days, increasing.
    t_last : float
        Day of the last reading, where the calibration pins the discrepancy to zero.
    walk, slope_walk : ndarray, shape (m, n)
        Standard normal increments (common random numbers).
    walk_var : float
        Level random-walk variance per year.
    slope_walk_var : float
        Slope diffusion per year.

    Returns
    -------
    ndarray, shape (m, n)
        Model-scale deviations; the level part has variance ``walk_var·Δ`` and the integrated
        slope part ``slope_walk_var·Δ³/3`` after ``Δ`` years (trapezoidal integration).
    """
    elapsed = np.clip(t - t_last, 0.0, None) / DAYS_PER_YEAR
    steps = np.diff(np.concatenate([[0.0], elapsed]))
    level = np.sqrt(walk_var) * np.cumsum(walk * np.sqrt(steps), axis=1)
    slope = np.sqrt(slope_walk_var) * np.cumsum(slope_walk * np.sqrt(steps), axis=1)
    prev = np.concatenate([np.zeros((slope.shape[0], 1)), slope[:, :-1]], axis=1)
    out: FloatArray = level + np.cumsum(0.5 * (prev + slope) * steps, axis=1)
    return out


def _quantiles(x: FloatArray) -> FloatArray:
    out: FloatArray = np.quantile(x, [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
    return out


def _active(
    exposures: Sequence[TreatmentExposure], classes: frozenset[str], t: FloatArray
) -> FloatArray:
    on = np.zeros(t.shape, dtype=bool)
    for e in exposures:
        if e.treatment in classes:
            on |= (t >= e.start) & ((t < e.stop) if e.stop is not None else True)
    return on.astype(np.float64)


def smoker_fraction(
    cal: Calibration, exposures: Sequence[TreatmentExposure], t: FloatArray
) -> FloatArray:
    """Current-smoker weight (0-1) on days ``t``: phased out after smoking cessation (Duncan 2019)."""
    frac = np.full(t.shape, 1.0 if cal.history.smoker else 0.0)
    for e in exposures:
        for row in effects_for(e.treatment, "smoker", e.intensity):
            frac = frac + frac * row.delta * onset(t, e.start, e.stop, row.tau_days)
    out: FloatArray = np.clip(frac, 0.0, 1.0)
    return out


def prevent_inputs(
    cal: Calibration,
    exposures: Sequence[TreatmentExposure],
    t: FloatArray,
    traj: Mapping[str, FloatArray],
) -> dict[str, FloatArray]:
    """PREVENT inputs along the trajectory ``traj`` (variable → values on days ``t``), clamped.

    The BP-treatment and statin flags come from current care (the history's treatments), not from
    ``exposures``: in PREVENT they mark who was treated (higher untreated risk), so a plan acts
    through the risk factors it changes, never by switching a flag. Returns arrays broadcastable
    to ``traj``'s shape, in PREVENT's units; ``age`` is NaN outside 30-79 years.
    """
    ctx = cal.context
    hdl = ctx.get("hdl", DEFAULT_HDL)
    tg = ctx.get("triglycerides", DEFAULT_TRIGLYCERIDES)
    age = cal.history.age_years + t / DAYS_PER_YEAR
    age = np.where((age >= PREVENT_AGE[0]) & (age <= PREVENT_AGE[1]), age, np.nan)
    inputs: dict[str, FloatArray] = {
        "age": age,
        "sbp": traj["sbp"],
        "total_chol": lipids.total_cholesterol(traj["ldl"], hdl, tg),
        "hdl": np.asarray(hdl, dtype=np.float64),
        "egfr": traj["egfr"],
        "hba1c": traj["hba1c"],
        "bp_treated": _active(cal.history.treatments, BP_CLASSES, t),
        "statin": _active(cal.history.treatments, frozenset({"statin"}), t),
        "diabetes": np.maximum(
            float(cal.history.diabetes), (traj["hba1c"] >= glycaemia.DIABETES_HBA1C).astype(float)
        ),
        "smoker": smoker_fraction(cal, exposures, t),
    }
    if "height" in ctx:
        inputs["bmi"] = traj["weight"] / (ctx["height"] / 100.0) ** 2
    for k, (lo, hi) in PREVENT_RANGES.items():
        if k in inputs:
            inputs[k] = np.clip(inputs[k], lo, hi)
    return inputs


def default_risk_fn() -> RiskFn | None:
    """``models_engine.risk.prevent`` if that module is installed, else ``None``."""
    try:
        from models_engine import risk
    except ImportError:
        return None
    fn: RiskFn | None = getattr(risk, "prevent", None)
    return fn


def prevent_risk(
    cal: Calibration, inputs: Mapping[str, FloatArray], risk_fn: RiskFn
) -> dict[str, FloatArray]:
    """10-year PREVENT risks for every element of ``inputs`` (broadcast together), vectorised.

    The smoker weight is applied by mixing the smoker and non-smoker risks, so a quit attempt
    phases in. The HbA1c (and, when recorded, UACR) variant of PREVENT is used, so glycaemic
    plans move the risk. Elements outside PREVENT's age range give NaN.
    """
    arrays = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in inputs.values()])
    flat = {k: a.ravel() for k, a in zip(inputs.keys(), arrays, strict=True)}
    shape = arrays[0].shape
    ok = np.isfinite(flat["age"])
    results: dict[str, FloatArray] = {}
    if not ok.any():
        return results
    kw: dict[str, Any] = {
        "age": flat["age"][ok],
        "sex": cal.history.sex,
        "sbp": flat["sbp"][ok],
        "bp_treated": (flat["bp_treated"][ok] > 0.5).astype(np.int64),
        "total_chol": flat["total_chol"][ok],
        "hdl": flat["hdl"][ok],
        "statin": (flat["statin"][ok] > 0.5).astype(np.int64),
        "diabetes": (flat["diabetes"][ok] > 0.5).astype(np.int64),
        "egfr": flat["egfr"][ok],
        "hba1c": flat["hba1c"][ok],
        "horizon": 10,
    }
    if "bmi" in flat:
        kw["bmi"] = flat["bmi"][ok]
    if "uacr" in cal.context:
        kw["uacr"] = float(np.clip(cal.context["uacr"], 0.1, 25000.0))
    w = flat["smoker"][ok]
    n_ok = int(ok.sum())
    mixed: dict[str, FloatArray] = {}
    for smoker, weight in ((1, w), (0, 1.0 - w)):
        if not np.any(weight > 0.0):
            continue
        res = risk_fn(**kw, smoker=np.full(n_ok, smoker, dtype=np.int64))
        for k, val in res.items():
            arr = np.broadcast_to(np.asarray(val, dtype=np.float64), (n_ok,))
            mixed[k] = mixed.get(k, np.zeros(n_ok)) + weight * arr
    for k, val in mixed.items():
        full = np.full(ok.size, np.nan)
        full[ok] = val
        results[k] = full.reshape(shape)
    return results


def forecast(
    cal: Calibration,
    *,
    horizon_years: float = 10.0,
    n_samples: int = 200,
    step_days: float = 30.4375,
    start: float | None = None,
    plan: Sequence[PlanItem] = (),
    seed: int | np.random.Generator = 0,
    draws: Draws | None = None,
    risk_fn: RiskFn | None = None,
    with_risk: bool = True,
) -> Forecast:
    """Forecast a calibrated patient.

    Parameters
    ----------
    cal : Calibration
    horizon_years : float
        Years ahead (default 10).
    n_samples : int
        Posterior samples.
    step_days : float
        Output grid spacing, days (default one month).
    start : float, optional
        First day of the forecast (default ``cal.until``).
    plan : sequence of PlanItem
        Interventions added to current care.
    seed : int or Generator
        Seed of the common random numbers (ignored when ``draws`` is given).
    draws : Draws, optional
        Pre-drawn common random numbers (``what-if`` passes the same ones to every plan).
    risk_fn : callable, optional
        PREVENT implementation (default ``models_engine.risk.prevent`` when available).
    with_risk : bool
        Compute PREVENT along the median trajectory at yearly points. This describes the risk a
        patient in that state would carry (an association); the effect of a plan on risk comes
        from ``whatif.compare_plans``.

    Returns
    -------
    Forecast
    """
    validate_samples(n_samples)
    t0 = cal.until if start is None else start
    t = time_grid(t0, horizon_years, step_days)
    if draws is None:
        draws = Draws.make(n_samples, t.size, seed)
    exposures, plan_notes = plan_exposures(cal, plan)
    sims = simulate(cal, t, exposures, draws)
    variables: dict[str, VariableForecast] = {}
    for v, (true, observed) in sims.items():
        q = _quantiles(observed)
        variables[v] = VariableForecast(v, VARIABLE_UNITS[v], true, observed, *q)
    years = (t - t0) / DAYS_PER_YEAR
    yearly = np.searchsorted(years, np.arange(0, int(np.floor(horizon_years + 1e-9)) + 1) - 1e-9)
    events = event_probabilities(cal, sims, years, yearly)
    notes = [*cal.notes, *plan_notes]
    risk: dict[str, FloatArray] = {}
    fn = risk_fn if risk_fn is not None else default_risk_fn()
    if with_risk and fn is not None:
        med = {v: np.median(sims[v][0][:, yearly], axis=0) for v in FIT_VARIABLES}
        risk = prevent_risk(cal, prevent_inputs(cal, exposures, t[yearly], med), fn)
    elif with_risk:
        notes.append("PREVENT risk unavailable: models_engine.risk is not installed")
    return Forecast(
        patient_id=cal.patient_id,
        t_days=t,
        variables=variables,
        risk_years=years[yearly],
        risk=risk,
        event_probability=events,
        notes=tuple(notes),
    )


def event_probabilities(
    cal: Calibration,
    sims: Mapping[str, tuple[FloatArray, FloatArray]],
    years: FloatArray,
    yearly: npt.NDArray[np.intp],
) -> dict[str, FloatArray]:
    """Cumulative probability by each whole year of HbA1c ≥ 6.5 % (diabetes onset) and eGFR < 60."""
    hba1c = sims["hba1c"][0]
    first = glycaemia.years_to_threshold(years, hba1c)
    if cal.history.diabetes:
        first = np.zeros_like(first)
    egfr_first = glycaemia.years_to_threshold(years, -sims["egfr"][0], -renal.CKD_THRESHOLD)
    grid = years[yearly]
    return {
        "diabetes": (first[:, None] <= grid[None, :] + 1e-9).mean(axis=0),
        "egfr_below_60": (egfr_first[:, None] <= grid[None, :] + 1e-9).mean(axis=0),
    }


#: Quantile levels reported by ``forecast_batch``: median, 80 % and 95 % bands.
BATCH_QUANTILES: tuple[float, ...] = (0.5, 0.1, 0.9, 0.025, 0.975)


@dataclass(frozen=True)
class BatchForecast:
    """Bands of many patients: ``bands[v]`` has shape (P, 5, T) for ``BATCH_QUANTILES``."""

    patient_ids: tuple[str, ...]
    t_years: FloatArray
    bands: dict[str, FloatArray]

    def to_dict(self) -> dict[str, object]:
        """JSON-able lists."""
        return {
            "patient_ids": list(self.patient_ids),
            "t_years": self.t_years.tolist(),
            "quantiles": list(BATCH_QUANTILES),
            "bands": {k: v.tolist() for k, v in self.bands.items()},
        }


def _fixed_effects(
    cals: Sequence[Calibration], variable: str, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per patient: treatment effect at the posterior mean (P, T) and coupled effect (P, T)."""
    d = np.zeros(t.shape)
    c = np.zeros(t.shape)
    for i, cal in enumerate(cals):
        exps = cal.history.treatments
        if not exps:
            continue
        fit = cal.fits[variable]
        m = fit.mean
        if any(effects_for(e.treatment, variable, e.intensity) for e in exps):
            d[i] = effect_matrix(
                variable,
                exps,
                t[i],
                m[:1],
                m[1:2],
                m[2:3],
                readings(cal.history, variable, cal.until),
                fit.class_scale,
            )[0]
        c[i] = body.coupled_effect(variable, exps, t[i])
    return d, c


def forecast_batch(
    cals: Sequence[Calibration],
    *,
    horizon_years: float = 10.0,
    n_samples: int = 200,
    step_days: float = DAYS_PER_YEAR,
    seed: int = 0,
) -> BatchForecast:
    """Current-care bands of many patients at once, vectorised over patients and samples.

    Each patient's grid starts at their own ``until``. The treatment effects enter at each
    patient's posterior mean (their baseline dependence is not resampled), which is where this
    differs from ``forecast``; every other term is sampled as there.

    Parameters
    ----------
    cals : sequence of Calibration
    horizon_years : float
    n_samples : int
        Posterior samples per patient.
    step_days : float
        Grid spacing, days (default yearly).
    seed : int
        Seed of the random draws (shared by all patients: each patient's bands are still drawn
        from that patient's own posterior).

    Returns
    -------
    BatchForecast
    """
    validate_samples(n_samples)
    p = priors()
    grid = time_grid(0.0, horizon_years, step_days)
    grid_years = grid / DAYS_PER_YEAR
    if not cals:
        empty = np.empty((0, len(BATCH_QUANTILES), grid.size))
        return BatchForecast((), grid_years, {v: empty.copy() for v in FORECAST_VARIABLES})
    starts = np.array([c.until for c in cals])
    t = starts[:, None] + grid[None, :]
    years = t / DAYS_PER_YEAR
    draws = Draws.make(n_samples, grid.size, seed)
    # layout (patient, time, sample): the sample axis is contiguous for the quantiles
    bands: dict[str, FloatArray] = {}
    offset: FloatArray | None = None
    hba1c_true: FloatArray | None = None
    kappa_a1c = np.array([c.fits["hba1c"].noise_scale for c in cals])
    f32 = np.float32
    for v in FIT_VARIABLES:
        mean = np.stack([c.fits[v].mean for c in cals])
        cov = np.stack([c.fits[v].cov for c in cals]) + 1e-12 * np.eye(4)
        theta = mean[:, :, None] + np.einsum("sk,pjk->pjs", draws.theta[v], np.linalg.cholesky(cov))
        theta = theta.astype(f32)
        d, c = _fixed_effects(cals, v, t)
        # single precision: the bands need three significant digits, and memory traffic dominates
        inputs = d.astype(f32)[:, :, None] * theta[:, None, 2, :]
        inputs += c.astype(f32)[:, :, None]
        z = np.multiply(years.astype(f32)[:, :, None], theta[:, None, 1, :])
        z += theta[:, None, 0, :]
        z += inputs
        walk = _walk_parts(cals, v, starts, grid_years, draws)
        _add_walk(z, *walk)
        kappa = np.array([cal.fits[v].noise_scale for cal in cals], dtype=f32)[:, None]
        parts = [component_samples(cal.fits[v], draws.picks(v)) for cal in cals]
        local = np.stack([loc for loc, _ in parts])
        steady = np.stack([st for _, st in parts])
        if local.any():
            # the local-level model's samples (prequential weights): level now, same inputs, walk
            lvl = np.array([[c.fits[v].local_level, c.fits[v].local_level_var] for c in cals])
            # its walk is the level walk alone: the first two of the structural model's terms
            _mix_in(z, local, inputs, lvl, draws.theta[v][:, 0], (walk[0][:2], walk[1][:2]))
        if steady.any():
            # the steady-level model's samples: its level, the same inputs, no walk
            lvl = np.array([[c.fits[v].steady_level, c.fits[v].steady_level_var] for c in cals])
            _mix_in(z, steady, inputs, lvl, draws.theta[v][:, 0], None)
        simple = local | steady
        if simple.any():
            rows = np.flatnonzero(simple.any(axis=1))
            k_local = np.array([cals[int(i)].fits[v].local_noise_scale for i in rows], dtype=f32)
            kappa = np.broadcast_to(kappa, simple.shape).copy()
            kappa[rows] = np.where(simple[rows], k_local[:, None], kappa[rows])
        kappa3 = kappa[:, None, :]
        true = from_model_scale(v, z)
        if v == "egfr":
            np.maximum(true, f32(renal.EGFR_FLOOR), out=true)
        eps = draws.noise[v].T.astype(f32)[None, :, :]
        if (v, "noise_sd") in p:
            observed = np.multiply(kappa3 * f32(p[(v, "noise_sd")]), eps)
            observed += true
        elif v in LOG_VARIABLES:
            observed = np.multiply(kappa3 * f32(p[(v, "noise_cv")]), eps)
            observed += z
            np.exp(observed, out=observed)
        else:
            observed = np.multiply(kappa3 * f32(p[(v, "noise_cv")]), eps)
            observed += 1.0
            observed *= true
        bands[v] = _batch_quantiles(observed, in_place=True)
        if v == "hba1c":
            offset, hba1c_true = theta[:, None, 3, :], true
    assert offset is not None and hba1c_true is not None
    g_true = np.maximum(glycaemia.fasting_glucose(hba1c_true, offset), np.float32(GLUCOSE_FLOOR))
    cv = (kappa_a1c * p[("glucose", "noise_cv")])[:, None, None]
    g_obs = np.multiply(cv.astype(np.float32), draws.noise["glucose"].T[None].astype(np.float32))
    g_obs += 1.0
    g_obs *= g_true
    bands["glucose"] = _batch_quantiles(g_obs, in_place=True)
    return BatchForecast(
        patient_ids=tuple(c.patient_id for c in cals), t_years=grid_years, bands=bands
    )


#: Share of a component's samples below which ``_mix_in`` computes only those samples.
_SPARSE_SHARE = 0.25


def _mix_in(
    z: npt.NDArray[np.float32],
    which: npt.NDArray[np.bool_],
    inputs: npt.NDArray[np.float32],
    level: FloatArray,
    normal: FloatArray,
    walk: tuple[list[FloatArray], list[FloatArray]] | None,
) -> None:
    """Replace the samples ``which`` (P, S) of ``z`` (P, T, S) by a simpler model's, in place.

    That model's sample is ``inputs`` plus its level now (``level[:, 0]`` + ``sqrt(level[:, 1])``
    times the sample's standard normal ``normal``) plus, if given, a walk (``_walk_parts``). A
    component holding few samples (most patients' weights favour the structural model) is computed
    for those samples only, not for every sample and then masked.
    """
    f32 = np.float32
    if which.mean() < _SPARSE_SHARE:
        pk, sk = np.nonzero(which)
        values = inputs[pk, :, sk]
        values += (level[pk, 0] + np.sqrt(level[pk, 1]) * normal[sk]).astype(f32)[:, None]
        if walk is not None:
            for scale, pattern in zip(*walk, strict=True):
                values += (scale[pk][:, None] * pattern[:, sk].T).astype(f32)
        z[pk, :, sk] = values
        return
    rows = np.flatnonzero(which.any(axis=1))
    dense = inputs[rows]
    dense += (level[rows, :1] + np.sqrt(level[rows, 1:]) * normal[None, :]).astype(f32)[:, None, :]
    if walk is not None:
        scales, patterns = walk
        _add_walk(dense, [sc[rows] for sc in scales], patterns)
    if rows.size == z.shape[0]:
        np.copyto(z, dense, where=which[:, None, :])
    else:
        z[rows] = np.where(which[rows][:, None, :], dense, z[rows])


def _batch_quantiles(x: npt.NDArray[np.floating[Any]], *, in_place: bool = False) -> FloatArray:
    """(P, T, S) samples → (P, 5, T) quantiles at ``BATCH_QUANTILES`` (linear interpolation).

    One vectorised sort of the contiguous sample axis is an order of magnitude faster here than
    ``np.quantile``'s partitioning; the interpolation is numpy's default ("linear"). With
    ``in_place`` the samples are sorted where they are (the caller's array is reordered).
    """
    n = x.shape[2]
    if in_place:
        x.sort(axis=2)
        ordered = x
    else:
        ordered = np.sort(x, axis=2)
    pos = np.asarray(BATCH_QUANTILES) * (n - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo).astype(x.dtype)
    q = ordered[..., lo] * (1 - frac) + ordered[..., hi] * frac
    out: FloatArray = np.moveaxis(q, 2, 1).astype(np.float64)
    return out


def _add_walk(
    z: npt.NDArray[np.float32], scales: Sequence[FloatArray], patterns: Sequence[FloatArray]
) -> None:
    """``z += Σ_j scales[j] ⊗ patterns[j]`` (P,) ⊗ (T, S), as one product of the scales (P, J)
    and the patterns (J, T·S) added in one pass."""
    f32 = np.float32
    coef = np.stack(scales, axis=1).astype(f32)
    basis = np.stack([b.reshape(-1) for b in patterns]).astype(f32)
    z += (coef @ basis).reshape(z.shape)


def _walk_parts(
    cals: Sequence[Calibration],
    variable: str,
    starts: FloatArray,
    grid_years: FloatArray,
    draws: Draws,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """``local_trend`` of many patients as per-patient scales (P,) of shared (T, S) patterns.

    Every patient's grid starts ``gap`` years after their last reading and then shares the same
    steps, so the walks split into a shared part and a per-patient first step. The first two
    terms are the level walk (all the local-level model has), the other three the slope's.
    """
    gap = np.clip(starts - np.array([c.fits[variable].t_last for c in cals]), 0.0, None)
    gap /= DAYS_PER_YEAR
    steps = np.diff(grid_years, prepend=0.0)
    walk = draws.walk[variable].T
    swalk = draws.slope_walk[variable].T
    # each calibration batch has its own empirical-Bayes walk variances
    qq = np.array([c.fits[variable].walk_variances() for c in cals]).reshape(-1, 2)
    rq, rqs = np.sqrt(qq[:, 0]), np.sqrt(qq[:, 1])
    level_part = np.cumsum(walk * np.sqrt(steps)[:, None], axis=0)
    root = np.sqrt(gap)
    n_t, n_s = level_part.shape
    scales = [rq, rq * root]
    patterns = [level_part, np.broadcast_to(walk[0], (n_t, n_s))]
    shared_slope = np.cumsum(swalk * np.sqrt(steps)[:, None], axis=0)
    shared_slope[0] = 0.0
    prev = np.vstack([np.zeros((1, walk.shape[1])), shared_slope[:-1]])
    slope_part = np.cumsum(0.5 * (prev + shared_slope) * steps[:, None], axis=0)
    # the slope's first step: its lever arm is half the gap plus the time since the grid began
    first_slope = np.broadcast_to(swalk[0], (n_t, n_s))
    scales += [rqs, rqs * root * 0.5 * gap, rqs * root]
    patterns += [slope_part, first_slope, grid_years[:, None] * first_slope]
    return scales, patterns
