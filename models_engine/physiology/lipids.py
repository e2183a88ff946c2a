"""LDL-cholesterol sub-model: a personalised log-linear drift with proportional drug effects.

Statins and ezetimibe lower LDL by a fraction of its value (Law, Wald, Rudnicka BMJ 2003;326:1423;
CTT Lancet 2010;376:1670), so the model is linear in ``log(LDL)``: each treatment adds
``log(1 + delta)`` with first-order onset (catalogue rows acting on ``ldl``). Total cholesterol for
the risk equations is rebuilt with the Friedewald relation.
"""

from __future__ import annotations

import numpy as np

from models_engine.history import FloatArray

#: Friedewald WT, Levy RI, Fredrickson DS. Clin Chem 1972;18:499: VLDL-C ≈ triglycerides / 5 (mg/dL).
FRIEDEWALD_TG_DIVISOR = 5.0


def validate_ldl(ldl: FloatArray | float) -> None:
    """Raise ``ValueError`` unless every LDL value is within 10-500 mg/dL."""
    v = np.asarray(ldl)
    if np.any((v < 10.0) | (v > 500.0)) or not np.all(np.isfinite(v)):
        raise ValueError(f"ldl must be within 10-500 mg/dL, got {v}")


def rhs(
    t: float, y: FloatArray, slope_per_day: float, target_log: float, tau_days: float
) -> FloatArray:
    """Right-hand side on the log scale.

    Parameters
    ----------
    t : float
        Days (unused; autonomous).
    y : ndarray, shape (2,)
        [natural log LDL, treatment effect on log LDL].
    slope_per_day : float
        Natural drift of log LDL per day.
    target_log : float
        Steady treatment effect, ``log(1 + delta)``.
    tau_days : float
        Onset time constant, days.

    Returns
    -------
    ndarray, shape (2,)
    """
    del t
    return np.array([slope_per_day, (target_log - y[1]) / tau_days])


def ldl_after(ldl0: FloatArray | float, fraction: FloatArray | float) -> FloatArray:
    """LDL (mg/dL) after a proportional change ``fraction`` (e.g. -0.5) from ``ldl0`` (mg/dL)."""
    validate_ldl(ldl0)
    out: FloatArray = np.asarray(ldl0, dtype=np.float64) * (1.0 + np.asarray(fraction))
    return out


def total_cholesterol(
    ldl: FloatArray | float, hdl: FloatArray | float, triglycerides: FloatArray | float
) -> FloatArray:
    """Total cholesterol (mg/dL) from LDL, HDL and triglycerides (mg/dL), Friedewald 1972."""
    out: FloatArray = (
        np.asarray(ldl, dtype=np.float64)
        + np.asarray(hdl, dtype=np.float64)
        + np.asarray(triglycerides, dtype=np.float64) / FRIEDEWALD_TG_DIVISOR
    )
    return out


def simulate(
    ldl0: float,
    slope_log_per_year: float,
    fraction: float,
    tau_days: float,
    t_eval: FloatArray,
) -> FloatArray:
    """Driver: integrate ``rhs`` from day 0 (treatment starting then) with a tight ``solve_ivp``.

    Parameters
    ----------
    ldl0 : float
        LDL at day 0, mg/dL.
    slope_log_per_year : float
        Natural drift of log LDL per year.
    fraction : float
        Steady proportional treatment effect (e.g. -0.5).
    tau_days : float
        Onset time constant, days.
    t_eval : ndarray, shape (n,)
        Days >= 0, increasing.

    Returns
    -------
    ndarray, shape (n,)
        LDL, mg/dL.
    """
    from scipy.integrate import solve_ivp

    validate_ldl(ldl0)
    if not (-1.0 < fraction < 1.0):
        raise ValueError(f"fraction must be within (-1, 1), got {fraction}")
    sol = solve_ivp(
        rhs,
        (0.0, float(t_eval[-1])),
        [np.log(ldl0), 0.0],
        t_eval=t_eval,
        args=(slope_log_per_year / 365.25, float(np.log1p(fraction)), tau_days),
        rtol=1e-10,
        atol=1e-10,
    )
    out: FloatArray = np.exp(sol.y[0] + sol.y[1])
    return out
