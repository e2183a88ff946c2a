"""Fits a patient's own parameters to their history: robust MAP with population priors, batched.

Each forecast variable ``v`` follows the structural model (on ``log`` scale for LDL)::

    z_v(t) = level + slope·t/365.25 + response·D_v(t; level, slope) + C_v(t) − offset·[glucose row]/28.7

``D_v`` is the summed catalogue effect of the treatments in the history (first-order onset, dose and
baseline dependence; ``treatments.py``), ``C_v`` the weight-coupled effect of deliberate weight loss
(``physiology/body.py``). Fasting glucose readings enter the HbA1c fit as ADAG pseudo-readings with
their own patient offset (``physiology/glycaemia.py``). The likelihood is Student-t (robust to
outliers), fitted by iteratively reweighted least squares with Gaussian priors from ``priors.csv``
and a per-patient noise scale with a scaled-inverse-χ² prior. The posterior is the Laplace
approximation at the MAP. All patients are solved together as stacked 4×4 systems.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models_engine.history import FloatArray, PatientHistory, TreatmentExposure
from models_engine.physiology import body, bp, glycaemia
from models_engine.treatments import effects_for, onset, steady_effect

PRIORS_PATH = Path(__file__).resolve().parent / "data" / "priors.csv"

#: Variables the twin calibrates and forecasts directly (glucose is derived from HbA1c).
FIT_VARIABLES: tuple[str, ...] = ("sbp", "dbp", "hba1c", "weight", "ldl", "egfr")
#: Variables modelled on the log scale (proportional drug effects).
LOG_VARIABLES: frozenset[str] = frozenset({"ldl"})
#: Parameters of every variable fit, in order.
PARAMETERS: tuple[str, ...] = ("level", "slope", "response", "offset")
#: Fewer readings than this and the fit leans on the priors; the result says so.
MIN_READINGS = 4
#: Prior mean of the gap between ADAG mean glucose and fasting glucose, mg/dL: eAG at a typical
#: HbA1c of 5.5 % is 111 mg/dL against a typical fasting value of about 95 (assumption).
GLUCOSE_OFFSET_MEAN = 15.0
DAYS_PER_YEAR = 365.25
_IRLS_ITERATIONS = 12
_OUTER_ITERATIONS = 3


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
    multiplies the prior measurement SD. ``fallback`` is True when fewer than ``MIN_READINGS``
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
                }
                for v, f in self.fits.items()
            },
        }


def effect_matrix(
    variable: str,
    exposures: Sequence[TreatmentExposure],
    t: FloatArray,
    level: FloatArray,
    slope: FloatArray,
    response: FloatArray,
) -> FloatArray:
    """Summed treatment effect ``D_v`` for each parameter sample (model scale).

    Each exposure's baseline is the patient's value just before it starts (untreated trajectory
    plus earlier exposures), as in the trials behind the catalogue's baseline dependence.

    Parameters
    ----------
    variable : str
    exposures : sequence of TreatmentExposure
    t : ndarray, shape (n,)
        Days.
    level, slope, response : ndarray, shape (m,)
        Parameter samples (model scale; slope per year).

    Returns
    -------
    ndarray, shape (m, n)
        Unscaled effect (multiply by ``response``); on the log scale for LDL.
    """
    t = np.asarray(t, dtype=np.float64)
    m = level.shape[0]
    total = np.zeros((m, t.size))
    done: list[tuple[float, FloatArray, float, float | None]] = []
    for exp in sorted(exposures, key=lambda e: e.start):
        rows = effects_for(exp.treatment, variable, exp.intensity)
        if not rows:
            continue
        base = level + slope * exp.start / DAYS_PER_YEAR
        for tau, size, start, stop in done:
            base = base + response * size * onset(np.array([exp.start]), start, stop, tau)[0]
        for row in rows:
            size = steady_effect(row, exp.dose, from_model_scale(variable, base))
            if row.effect == "relative":
                size = np.log1p(size)
            total += size[:, None] * onset(t, exp.start, exp.stop, row.tau_days)[None, :]
            done.append((row.tau_days, size, exp.start, exp.stop))
    return total


def _readings(
    history: PatientHistory, variable: str, until: float
) -> tuple[FloatArray, FloatArray]:
    series = history.observations.get(variable)
    if series is None:
        return np.empty(0), np.empty(0)
    keep = (series.t <= until) & np.isfinite(series.y) & (series.y > 0)
    return series.t[keep], series.y[keep]


def _rows(
    history: PatientHistory, variable: str, until: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Times, model-scale values, measurement SDs and glucose-row flags of one variable."""
    t, y = _readings(history, variable, until)
    z = to_model_scale(variable, y)
    sd = observation_sd(variable, y)
    flag = np.zeros(t.size)
    if variable == "hba1c":
        tg, g = _readings(history, "glucose", until)
        zg = glycaemia.hba1c_from_glucose(g)
        sdg = priors()[("glucose", "noise_cv")] * g / glycaemia.ADAG_SLOPE
        t, z = np.concatenate([t, tg]), np.concatenate([z, zg])
        sd, flag = np.concatenate([sd, sdg]), np.concatenate([flag, np.ones(tg.size)])
    return t, z, sd, flag


def prior_for(
    history: PatientHistory, variable: str, until: float
) -> tuple[FloatArray, FloatArray]:
    """Prior mean and SD of (level, slope/yr, response, offset) on the model scale."""
    p = priors()
    age = max(history.age_years + until / DAYS_PER_YEAR, 18.0)
    t, y = _readings(history, variable, until)
    resp_sd = p[(variable, "response_sd")]
    offset_mean, offset_sd = 0.0, 1.0
    if variable in ("sbp", "dbp"):
        track = bp.sbp_on_track if variable == "sbp" else bp.dbp_on_track
        ref = bp.REF_SBP if variable == "sbp" else bp.REF_DBP
        level = float(track(age, ref))
        obs_age = (
            float(np.clip(history.age_years + np.median(t) / DAYS_PER_YEAR, 18, 110))
            if t.size
            else age
        )
        reading = float(np.median(y)) if y.size else level
        slope_fn = bp.sbp_slope if variable == "sbp" else bp.dbp_slope
        slope = float(slope_fn(obs_age, reading))
    elif variable == "hba1c":
        diabetic = history.diabetes or (
            y.size > 0 and float(np.median(y)) >= glycaemia.DIABETES_HBA1C
        )
        tag = "diabetic" if diabetic else "nondiabetic"
        level = p[("hba1c", f"level_mean_{tag}")]
        slope = p[("hba1c", f"slope_mean_{tag}")]
        offset_mean, offset_sd = GLUCOSE_OFFSET_MEAN, p[("glucose", "offset_sd")]
    elif variable == "weight":
        level = p[("weight", f"level_mean_{history.sex}")]
        slope = p[("weight", "slope_mean")]
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
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Robust MAP of many stacked linear-Gaussian-prior, Student-t-likelihood problems (IRLS).

    Parameters
    ----------
    x : ndarray, shape (P, N, k)
        Design rows (padded rows are ignored through ``mask``).
    z : ndarray, shape (P, N)
        Observations on the model scale.
    sd : ndarray, shape (P, N)
        Prior measurement SD of each row (> 0).
    mask : ndarray, shape (P, N)
        1 for real rows, 0 for padding.
    prior_mean, prior_sd : ndarray, shape (P, k)
        Gaussian priors.
    dof : float
        Student-t degrees of freedom.
    prior_dof : float
        Prior degrees of freedom of the noise scale (scaled-inverse-χ² centred on 1).

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
    # t-distribution scale that gives the stated SD
    s_t = sd * math.sqrt((dof - 2.0) / dof)
    n = mask.sum(axis=1)
    prior_prec = 1.0 / prior_sd**2
    w = mask.copy()
    scale2 = np.ones(x.shape[0])
    for _ in range(_IRLS_ITERATIONS):
        prec = w / (scale2[:, None] * s_t**2)
        a = np.einsum("pn,pni,pnj->pij", prec, x, x)
        a[:, np.arange(x.shape[2]), np.arange(x.shape[2])] += prior_prec
        b = np.einsum("pn,pni,pn->pi", prec, x, z) + prior_mean * prior_prec
        mean = np.linalg.solve(a, b[..., None])[..., 0]
        r2 = ((z - np.einsum("pni,pi->pn", x, mean)) / s_t) ** 2 * mask
        w = mask * (dof + 1.0) / (dof + r2 / scale2[:, None])
        scale2 = (prior_dof + (w * r2).sum(axis=1)) / (prior_dof + n)
    prec = w / (scale2[:, None] * s_t**2)
    a = np.einsum("pn,pni,pnj->pij", prec, x, x)
    a[:, np.arange(x.shape[2]), np.arange(x.shape[2])] += prior_prec
    return mean, np.linalg.inv(a), np.sqrt(scale2)


def _context(history: PatientHistory, until: float) -> dict[str, float]:
    ctx: dict[str, float] = {}
    for name in ("hdl", "triglycerides", "height", "uacr", "total_chol", "ldl"):
        t, y = _readings(history, name, until)
        if y.size:
            ctx[name] = float(y[np.argmax(t)])
    return ctx


def calibrate_batch(
    histories: Sequence[PatientHistory], *, until: Sequence[float] | float = 0.0
) -> list[Calibration]:
    """Calibrate many patients at once (stacked IRLS per variable).

    Parameters
    ----------
    histories : sequence of PatientHistory
    until : float or sequence of float
        Use readings at or before this day (relative to each reference date); one per patient or
        one for all.

    Returns
    -------
    list of Calibration, in input order.
    """
    n_pat = len(histories)
    cutoffs = np.broadcast_to(np.asarray(until, dtype=np.float64), (n_pat,))
    dof, prior_dof = noise_dof(), priors()[("all", "noise_prior_dof")]
    fits: list[dict[str, VariableFit]] = [{} for _ in range(n_pat)]
    notes: list[list[str]] = [[] for _ in range(n_pat)]
    for var in FIT_VARIABLES:
        data = [_rows(h, var, float(c)) for h, c in zip(histories, cutoffs, strict=True)]
        pri = [prior_for(h, var, float(c)) for h, c in zip(histories, cutoffs, strict=True)]
        width = max(1, max(d[0].size for d in data))
        tt = np.zeros((n_pat, width))
        z = np.zeros((n_pat, width))
        sd = np.ones((n_pat, width))
        mask = np.zeros((n_pat, width))
        flag = np.zeros((n_pat, width))
        for i, (t_i, z_i, sd_i, f_i) in enumerate(data):
            k = t_i.size
            tt[i, :k], z[i, :k], sd[i, :k], mask[i, :k], flag[i, :k] = t_i, z_i, sd_i, 1.0, f_i
        m0 = np.stack([p[0] for p in pri])
        s0 = np.stack([p[1] for p in pri])
        mean = m0.copy()
        cov = np.zeros((n_pat, 4, 4))
        scale = np.ones(n_pat)
        has_tx = [
            any(effects_for(e.treatment, var, e.intensity) for e in h.treatments) for h in histories
        ]
        for _ in range(_OUTER_ITERATIONS):
            x = np.zeros((n_pat, width, 4))
            x[:, :, 0] = 1.0
            x[:, :, 1] = tt / DAYS_PER_YEAR
            x[:, :, 3] = -flag / glycaemia.ADAG_SLOPE
            zc = z.copy()
            for i, h in enumerate(histories):
                if has_tx[i]:
                    x[i, :, 2] = effect_matrix(
                        var, h.treatments, tt[i], mean[i, :1], mean[i, 1:2], mean[i, 2:3]
                    )[0]
                zc[i] -= body.coupled_effect(var, h.treatments, tt[i])
            mean, cov, scale = solve_batch(
                x * mask[..., None], zc, sd, mask, m0, s0, dof=dof, prior_dof=prior_dof
            )
            if not any(has_tx):
                break
        for i, (t_i, _z, _s, f_i) in enumerate(data):
            n_obs = int((f_i == 0).sum())
            fallback = n_obs < MIN_READINGS
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
                noise_scale=float(scale[i]),
                n_obs=n_obs,
                t_last=float(t_i.max()) if t_i.size else float(cutoffs[i]),
                fallback=fallback,
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
