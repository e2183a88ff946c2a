"""SCORE2: 10-year risk of fatal and non-fatal CVD in Europe, recalibrated to four risk regions.

SCORE2 working group and ESC Cardiovascular risk collaboration. SCORE2 risk prediction algorithms:
new models to estimate 10-year risk of cardiovascular disease in Europe. Eur Heart J 2021;42:2439–2454,
doi:10.1093/eurheartj/ehab309. Coefficients (Supplementary Methods Table 2) and region scales
(Supplementary Methods Table 3) live in ``models_engine/data/risk/score2*.csv``. SCORE2 is for people
without diabetes, so the diabetes terms of the derivation model are not used.
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

REGIONS: tuple[str, ...] = ("low", "moderate", "high", "very_high")

#: SCORE2 applies to ages 40–69 (SCORE2 2021; SCORE2-OP covers 70 and over).
VALID_RANGES: Mapping[str, tuple[float, float]] = {"age": (40.0, 69.0)}


@functools.cache
def coefficients(sex: str) -> Mapping[str, float]:
    """Supplementary Methods Table 2 coefficients and baseline survival for one sex."""
    return {
        row["term"]: float(row["coefficient"])
        for row in data_table("risk/score2.csv")
        if row["sex"] == sex
    }


@functools.cache
def recalibration(sex: str, region: str) -> tuple[float, float]:
    """Region scales (scale1, scale2) of Supplementary Methods Table 3."""
    for row in data_table("risk/score2_recalibration.csv"):
        if row["sex"] == sex and row["region"] == region:
            return float(row["scale1"]), float(row["scale2"])
    raise LookupError(f"no SCORE2 recalibration for {sex}/{region}")


def score2(
    *,
    age: Numeric,
    sex: str,
    smoker: Flag,
    sbp: Numeric,
    total_chol_mmol: Numeric,
    hdl_mmol: Numeric,
    region: str,
) -> RiskValue | RiskArray:
    """Region-calibrated SCORE2 10-year risk of fatal and non-fatal CVD.

    Linear predictor on cage = (age − 60)/5, csbp = (SBP − 120)/20, ctchol = TC − 6 and
    chdl = (HDL − 1.3)/0.5 with age interactions; uncalibrated risk 1 − S0 ** exp(lp); calibrated
    risk 1 − exp(−exp(scale1 + scale2 · ln(−ln(1 − uncalibrated)))).

    Parameters
    ----------
    age : float or array_like
        Years; validated 40–69.
    sex : {"female", "male"}
    smoker : bool, 0/1 or array_like
    sbp : float or array_like
        Systolic blood pressure, mmHg.
    total_chol_mmol, hdl_mmol : float or array_like
        mmol/L.
    region : {"low", "moderate", "high", "very_high"}
        ESC 2021 country risk region.

    Returns
    -------
    RiskValue or RiskArray
        Risk as a proportion (0–1), scalar or of the broadcast input shape, with range flags.
    """
    sex = check_choice("sex", sex, ("female", "male"))
    region = check_choice("region", region, REGIONS)
    age_a = as_measurement("age", age)
    sbp_a = as_measurement("sbp", sbp)
    tc = as_measurement("total_chol_mmol", total_chol_mmol)
    hdl = as_measurement("hdl_mmol", hdl_mmol)
    smoke = as_indicator("smoker", smoker)
    shape = np.broadcast_shapes(age_a.shape, sbp_a.shape, tc.shape, hdl.shape, smoke.shape)

    c = coefficients(sex)
    cage = (age_a - 60.0) / 5.0
    csbp = (sbp_a - 120.0) / 20.0
    ctchol = tc - 6.0
    chdl = (hdl - 1.3) / 0.5
    lp = (
        c["age"] * cage
        + c["smoker"] * smoke
        + c["sbp"] * csbp
        + c["total_chol"] * ctchol
        + c["hdl"] * chdl
        + c["age_x_smoker"] * cage * smoke
        + c["age_x_sbp"] * cage * csbp
        + c["age_x_total_chol"] * cage * ctchol
        + c["age_x_hdl"] * cage * chdl
    )
    uncalibrated = 1.0 - c["baseline_survival"] ** np.exp(np.broadcast_to(lp, shape))
    scale1, scale2 = recalibration(sex, region)
    risk = 1.0 - np.exp(-np.exp(scale1 + scale2 * np.log(-np.log(1.0 - uncalibrated))))
    flags, in_range = range_flags({"age": (age_a, *VALID_RANGES["age"])}, shape)
    return package_risk(risk, flags, in_range)
