"""Body-weight sub-model and its couplings to blood pressure and glycaemia.

Weight follows a personalised linear drift (prior from population weight gain, priors.csv) plus
treatment effects with first-order onset (catalogue rows acting on ``weight``). Catalogue rows
flagged ``couple_weight`` (deliberate weight loss) also move BP and HbA1c through the
per-kilogram couplings below; drug rows already carry their trial-measured BP and HbA1c effects, so
they are not coupled again.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from models_engine.history import TREATMENT_CLASSES, FloatArray, TreatmentExposure
from models_engine.treatments import LIFESTYLE_KEYS, effects_for, onset, steady_effect

#: Neter JE et al. Hypertension 2003;42:878: SBP change per kg of weight change, mmHg/kg.
SBP_PER_KG = 1.05
#: Neter 2003: DBP change per kg of weight change, mmHg/kg.
DBP_PER_KG = 0.92
#: Gummesson A et al. Diabetes Obes Metab 2017: HbA1c change per kg of weight change, %/kg
#: (a reduced form of the weight → insulin-sensitivity coupling of the glycaemia model).
HBA1C_PER_KG = 0.10

#: Coupling coefficients by variable.
COUPLING: dict[str, float] = {"sbp": SBP_PER_KG, "dbp": DBP_PER_KG, "hba1c": HBA1C_PER_KG}


def rhs(
    t: float, y: FloatArray, slope_per_day: float, target: float, tau_days: float
) -> FloatArray:
    """Weight right-hand side: drift plus first-order approach of the treatment state to ``target``.

    Parameters
    ----------
    t : float
        Days (unused; autonomous).
    y : ndarray, shape (2,)
        [natural weight (kg), treatment effect (kg)].
    slope_per_day : float
        Natural drift, kg/day.
    target : float
        Steady-state treatment effect, kg.
    tau_days : float
        Onset time constant, days.

    Returns
    -------
    ndarray, shape (2,)
        Derivatives, kg/day.
    """
    del t
    return np.array([slope_per_day, (target - y[1]) / tau_days])


def coupled_weight_change(exposures: Iterable[TreatmentExposure], t: FloatArray) -> FloatArray:
    """Weight change (kg) at days ``t`` from catalogue rows flagged ``couple_weight``.

    Parameters
    ----------
    exposures : iterable of TreatmentExposure
    t : ndarray, shape (n,)
        Days from the reference date.

    Returns
    -------
    ndarray, shape (n,)
        kg (negative = loss).
    """
    t = np.asarray(t, dtype=np.float64)
    total = np.zeros(t.shape)
    for exp in exposures:
        for row in effects_for(exp.treatment, "weight", exp.intensity) if _known(exp) else ():
            if row.couple_weight:
                size = float(steady_effect(row, exp.dose, 0.0))
                total += size * onset(t, exp.start, exp.stop, row.tau_days)
    return total


def coupled_effect(
    variable: str, exposures: Iterable[TreatmentExposure], t: FloatArray
) -> FloatArray:
    """Change of ``variable`` (sbp, dbp or hba1c; else zero) caused by coupled weight change."""
    coef = COUPLING.get(variable, 0.0)
    if coef == 0.0:
        return np.zeros(np.shape(t))
    out: FloatArray = coef * coupled_weight_change(exposures, t)
    return out


def _known(exp: TreatmentExposure) -> bool:
    return exp.treatment in LIFESTYLE_KEYS or exp.treatment in TREATMENT_CLASSES


def simulate(
    weight0: float,
    slope_per_year: float,
    target_kg: float,
    tau_days: float,
    t_eval: FloatArray,
) -> FloatArray:
    """Driver: integrate ``rhs`` from day 0 (treatment starting then) with a tight ``solve_ivp``.

    Parameters
    ----------
    weight0 : float
        Weight at day 0, kg.
    slope_per_year : float
        Natural drift, kg/yr.
    target_kg : float
        Steady-state treatment effect, kg (negative = loss).
    tau_days : float
        Onset time constant, days.
    t_eval : ndarray, shape (n,)
        Days >= 0, increasing.

    Returns
    -------
    ndarray, shape (n,)
        Weight, kg.
    """
    from scipy.integrate import solve_ivp

    if tau_days <= 0:
        raise ValueError(f"tau_days must be > 0, got {tau_days}")
    sol = solve_ivp(
        rhs,
        (0.0, float(t_eval[-1])),
        [weight0, 0.0],
        t_eval=t_eval,
        args=(slope_per_year / 365.25, target_kg, tau_days),
        rtol=1e-10,
        atol=1e-10,
    )
    out: FloatArray = sol.y[0] + sol.y[1]
    return out
