"""Patient-level glycaemia: HbA1c and fasting glucose as a reduced form of Ha–Satin–Sherman 2016.

In the Ha, Satin & Sherman model (Endocrinology 2016;157:624; ``physiology/hss2016.py``) insulin
(minutes), glucose (hours) and the KATP shift γ (days) are fast and sit on their quasi-steady state;
what moves over a clinical forecast horizon is the slow pair β-cell mass (τ ≈ 23 y) and insulin
sensitivity / secretory capacity (months). Over the 1-10 year horizon the twin forecasts, the
quasi-steady fasting glucose is approximated to first order as a personalised level plus a linear
drift (the "coefficient of failure", Li et al. DOM 2021, priors.csv), and HbA1c follows mean glucose
through ADAG (Nathan et al. Diabetes Care 2008;31:1473) with a patient-specific offset between mean
and fasting glucose. Insulin sensitivity is coupled to weight through the per-kilogram HbA1c
coupling of ``body.HBA1C_PER_KG`` (Gummesson 2017). Drugs act on HbA1c with their placebo-adjusted
effects (treatment catalogue), which depend on baseline HbA1c (Sherifali 2010).

The reduced form drops the HSS bifurcation (sudden β-cell collapse); its linear drift is the
documented limitation. HbA1c turnover (red-cell lifespan, weeks) is folded into the drug onset time
constants of the catalogue (about two months: most of the effect within 4-6 months, Sherifali 2010).
"""

from __future__ import annotations

import numpy as np

from models_engine.history import FloatArray
from models_engine.physiology.hba1c import ADAG_INTERCEPT_MG_DL, ADAG_SLOPE_MG_DL

#: ADAG regression (Nathan DM et al. Diabetes Care 2008;31:1473), kept in ``physiology/hba1c.py``.
#: The conversions below apply it without that module's range checks: posterior samples and
#: imperfect records legitimately stray outside the range a single measurement is checked against.
ADAG_SLOPE = ADAG_SLOPE_MG_DL
ADAG_INTERCEPT = ADAG_INTERCEPT_MG_DL
#: ADA Standards of Care: diagnostic HbA1c threshold for diabetes, %.
DIABETES_HBA1C = 6.5
#: ADA Standards of Care: diagnostic fasting plasma glucose threshold for diabetes, mg/dL.
DIABETES_FPG = 126.0


def validate_hba1c(hba1c: FloatArray | float) -> None:
    """Raise ``ValueError`` unless every HbA1c is within 2-20 %."""
    v = np.asarray(hba1c)
    if np.any((v < 2.0) | (v > 20.0)) or not np.all(np.isfinite(v)):
        raise ValueError(f"hba1c must be within 2-20 %, got {v}")


def mean_glucose(hba1c: FloatArray | float) -> FloatArray:
    """ADAG estimated average glucose (mg/dL) from HbA1c (%); broadcasts."""
    out: FloatArray = ADAG_SLOPE * np.asarray(hba1c, dtype=np.float64) + ADAG_INTERCEPT
    return out


def hba1c_from_glucose(glucose: FloatArray | float) -> FloatArray:
    """Inverse ADAG: HbA1c (%) from mean glucose (mg/dL); broadcasts."""
    out: FloatArray = (np.asarray(glucose, dtype=np.float64) - ADAG_INTERCEPT) / ADAG_SLOPE
    return out


def fasting_glucose(hba1c: FloatArray | float, offset: FloatArray | float) -> FloatArray:
    """Fasting glucose (mg/dL) = ADAG mean glucose − patient offset (mg/dL); broadcasts."""
    out: FloatArray = mean_glucose(hba1c) - np.asarray(offset, dtype=np.float64)
    return out


def hba1c_from_fasting(glucose: FloatArray | float, offset: FloatArray | float) -> FloatArray:
    """HbA1c (%) implied by a fasting glucose (mg/dL) and the patient offset (mg/dL)."""
    return hba1c_from_glucose(np.asarray(glucose, dtype=np.float64) + np.asarray(offset))


def rhs(
    t: float, y: FloatArray, drift_per_day: float, target_effect: float, tau_days: float
) -> FloatArray:
    """Reduced glycaemia right-hand side.

    Parameters
    ----------
    t : float
        Days (unused; autonomous).
    y : ndarray, shape (2,)
        [quasi-steady HbA1c without treatment (%), treatment effect (%)]; HbA1c is their sum.
    drift_per_day : float
        Natural HbA1c drift, %/day.
    target_effect : float
        Steady-state treatment effect, % (its time constant includes HbA1c turnover).
    tau_days : float
        Treatment onset time constant, days.

    Returns
    -------
    ndarray, shape (2,)
        Derivatives, %/day.
    """
    del t
    return np.array([drift_per_day, (target_effect - y[1]) / tau_days])


def years_to_threshold(
    t_years: FloatArray, hba1c: FloatArray, threshold: float = DIABETES_HBA1C
) -> FloatArray:
    """First time (years) each trajectory reaches ``threshold``; ``inf`` if never.

    Parameters
    ----------
    t_years : ndarray, shape (n,)
    hba1c : ndarray, shape (m, n)
        Trajectories, %.
    threshold : float
        %.

    Returns
    -------
    ndarray, shape (m,)
    """
    above = hba1c >= threshold
    first = np.argmax(above, axis=1)
    out: FloatArray = np.where(above.any(axis=1), t_years[first], np.inf)
    return out


def simulate(
    hba1c0: float,
    drift_per_year: float,
    effect: float,
    tau_days: float,
    t_eval: FloatArray,
) -> FloatArray:
    """Driver: integrate ``rhs`` from day 0 (treatment starting then) with a tight ``solve_ivp``.

    Parameters
    ----------
    hba1c0 : float
        HbA1c at day 0, %.
    drift_per_year : float
        Natural drift, %/yr.
    effect : float
        Steady-state treatment effect, %.
    tau_days : float
        Treatment onset time constant, days.
    t_eval : ndarray, shape (n,)
        Days >= 0, increasing.

    Returns
    -------
    ndarray, shape (n,)
        HbA1c, %.
    """
    from scipy.integrate import solve_ivp

    validate_hba1c(hba1c0)
    sol = solve_ivp(
        rhs,
        (0.0, float(t_eval[-1])),
        [hba1c0, 0.0],
        t_eval=t_eval,
        args=(drift_per_year / 365.25, effect, tau_days),
        rtol=1e-10,
        atol=1e-10,
    )
    out: FloatArray = sol.y[0] + sol.y[1]
    return out
