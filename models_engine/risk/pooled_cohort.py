"""2013 ACC/AHA Pooled Cohort Equations: 10-year risk of a first hard ASCVD event.

Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. 2013 ACC/AHA guideline on the assessment of
cardiovascular risk. Circulation 2014;129(suppl 2):S49–S73, doi:10.1161/01.cir.0000437741.48606.98,
Table A. Coefficients live in ``models_engine/data/risk/pooled_cohort.csv``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from models_engine.risk._validate import (
    Flag,
    Numeric,
    RiskArray,
    RiskValue,
    as_indicator,
    as_measurement,
    check_choice,
    data_table,
    package_risk,
    range_flags,
)

#: Validated ranges. Age 40–79: Goff 2013 (derivation cohorts and intended use). Cholesterol and SBP:
#: the input limits of the ACC/AHA ASCVD Risk Estimator that accompanies the guideline, as commonly
#: reproduced (TC 130–320 mg/dL, HDL 20–100 mg/dL, SBP 90–200 mmHg); not re-checked against the tool.
VALID_RANGES: Mapping[str, tuple[float, float]] = {
    "age": (40.0, 79.0),
    "total_chol": (130.0, 320.0),
    "hdl": (20.0, 100.0),
    "sbp": (90.0, 200.0),
}


@functools.cache
def coefficients(race: str, sex: str) -> Mapping[str, float]:
    """Table A coefficients of one race-sex group; absent interaction terms are 0."""
    group = f"{race}_{sex}"
    return {
        row["term"]: float(row["coefficient"])
        for row in data_table("risk/pooled_cohort.csv")
        if row["group"] == group
    }


def pooled_cohort(
    *,
    age: Numeric,
    sex: str,
    race: str,
    total_chol: Numeric,
    hdl: Numeric,
    sbp: Numeric,
    bp_treated: Flag,
    smoker: Flag,
    diabetes: Flag,
) -> RiskValue | RiskArray:
    """10-year risk of a first hard ASCVD event (Goff 2013 Pooled Cohort Equations).

    risk = 1 − S0(10) ** exp(Σβx − mean Σβx), with ln-transformed age, cholesterol and SBP.

    Parameters
    ----------
    age : float or array_like
        Years; validated 40–79.
    sex : {"female", "male"}
    race : {"white", "black"}
        Goff 2013 advises the white equations for other groups; the caller decides.
    total_chol, hdl : float or array_like
        mg/dL.
    sbp : float or array_like
        Systolic blood pressure, mmHg.
    bp_treated, smoker, diabetes : bool, 0/1 or array_like

    Returns
    -------
    RiskValue or RiskArray
        Risk as a proportion (0–1): a float subclass for scalar inputs, an array of the broadcast
        shape otherwise; ``out_of_range``, ``in_range`` and ``notes`` describe range problems.
    """
    sex = check_choice("sex", sex, ("female", "male"))
    race = check_choice("race", race, ("white", "black"))
    x = {
        "age": as_measurement("age", age),
        "total_chol": as_measurement("total_chol", total_chol),
        "hdl": as_measurement("hdl", hdl),
        "sbp": as_measurement("sbp", sbp),
    }
    treated = as_indicator("bp_treated", bp_treated)
    smoke = as_indicator("smoker", smoker)
    dm = as_indicator("diabetes", diabetes)
    shape = np.broadcast_shapes(*(a.shape for a in (*x.values(), treated, smoke, dm)))

    c = coefficients(race, sex)

    def b(term: str) -> float:
        return c.get(term, 0.0)

    ln_age, ln_tc, ln_hdl, ln_sbp = (np.log(x[k]) for k in ("age", "total_chol", "hdl", "sbp"))
    sbp_coef = treated * b("ln_sbp_treated") + (1.0 - treated) * b("ln_sbp_untreated")
    age_sbp_coef = treated * b("ln_age_x_ln_sbp_treated") + (1.0 - treated) * b(
        "ln_age_x_ln_sbp_untreated"
    )
    lp = (
        b("ln_age") * ln_age
        + b("ln_age_squared") * ln_age**2
        + b("ln_total_chol") * ln_tc
        + b("ln_age_x_ln_total_chol") * ln_age * ln_tc
        + b("ln_hdl") * ln_hdl
        + b("ln_age_x_ln_hdl") * ln_age * ln_hdl
        + sbp_coef * ln_sbp
        + age_sbp_coef * ln_age * ln_sbp
        + b("smoker") * smoke
        + b("ln_age_x_smoker") * ln_age * smoke
        + b("diabetes") * dm
    )
    risk = 1.0 - c["baseline_survival"] ** np.exp(np.broadcast_to(lp, shape) - c["mean"])
    flags, in_range = range_flags({k: (v, *VALID_RANGES[k]) for k, v in x.items()}, shape)
    return package_risk(risk, flags, in_range)
