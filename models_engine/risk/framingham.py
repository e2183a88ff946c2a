"""Framingham general cardiovascular disease risk, 10-year (D'Agostino 2008).

D'Agostino RB Sr, Vasan RS, Pencina MJ, et al. General cardiovascular risk profile for use in primary
care: the Framingham Heart Study. Circulation 2008;117:743–753, doi:10.1161/CIRCULATIONAHA.107.699579,
Table 2. Coefficients live in ``models_engine/data/risk/framingham_2008.csv``; several public ports
swap the treated/untreated SBP coefficients or mistype the women's cholesterol coefficient.
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

#: Ages of the derivation cohort (D'Agostino 2008: participants aged 30–74 at the baseline exam).
VALID_RANGES: Mapping[str, tuple[float, float]] = {"age": (30.0, 74.0)}


@functools.cache
def coefficients(sex: str) -> Mapping[str, float]:
    """Table 2 coefficients, group mean of Σβx and 10-year baseline survival for one sex."""
    return {
        row["term"]: float(row["coefficient"])
        for row in data_table("risk/framingham_2008.csv")
        if row["sex"] == sex
    }


def framingham_2008(
    *,
    age: Numeric,
    sex: str,
    total_chol: Numeric,
    hdl: Numeric,
    sbp: Numeric,
    bp_treated: Flag,
    smoker: Flag,
    diabetes: Flag,
) -> RiskValue | RiskArray:
    """10-year risk of general CVD (coronary, cerebrovascular, peripheral arterial disease, HF).

    risk = 1 − S0(10) ** exp(Σβx − mean), with S0(10) = 0.95012 (women) and 0.88936 (men).

    Parameters
    ----------
    age : float or array_like
        Years; validated 30–74.
    sex : {"female", "male"}
    total_chol, hdl : float or array_like
        mg/dL.
    sbp : float or array_like
        Systolic blood pressure, mmHg.
    bp_treated, smoker, diabetes : bool, 0/1 or array_like

    Returns
    -------
    RiskValue or RiskArray
        Risk as a proportion (0–1), scalar or of the broadcast input shape, with range flags.
    """
    sex = check_choice("sex", sex, ("female", "male"))
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

    c = coefficients(sex)
    sbp_coef = treated * c["ln_sbp_treated"] + (1.0 - treated) * c["ln_sbp_untreated"]
    lp = (
        c["ln_age"] * np.log(x["age"])
        + c["ln_total_chol"] * np.log(x["total_chol"])
        + c["ln_hdl"] * np.log(x["hdl"])
        + sbp_coef * np.log(x["sbp"])
        + c["smoker"] * smoke
        + c["diabetes"] * dm
    )
    risk = 1.0 - c["baseline_survival"] ** np.exp(np.broadcast_to(lp, shape) - c["mean"])
    flags, in_range = range_flags({"age": (x["age"], *VALID_RANGES["age"])}, shape)
    return package_risk(risk, flags, in_range)
