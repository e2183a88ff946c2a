"""AHA PREVENT equations: 10- and 30-year risk of total CVD, ASCVD, heart failure, CHD and stroke.

Khan SS, Matsushita K, Sang Y, et al. Development and validation of the American Heart Association's
PREVENT equations. Circulation 2024;149:430–449, doi:10.1161/CIRCULATIONAHA.123.067626. Coefficients
are the supplement's tables, read from ``models_engine/data/prevent/`` (see the README there).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from models_engine.risk._validate import (
    Flag,
    FloatArray,
    Numeric,
    RiskDict,
    as_indicator,
    as_measurement,
    check_choice,
    data_table,
    range_flags,
)

OUTCOMES: tuple[str, ...] = ("total_cvd", "ascvd", "heart_failure", "chd", "stroke")
MODELS: tuple[str, ...] = ("base", "hba1c", "uacr", "sdi", "full")

#: mg/dL → mmol/L for cholesterol, the factor the PREVENT authors and preventr use (Khan 2024 supplement).
MG_DL_TO_MMOL_L = 0.02586

#: Validated input ranges: preventr ``R/prevent_equations.R`` (``valid``), which follows the PREVENT
#: derivation cohort limits (Khan 2024, Table 1 footnotes). preventr caps SBP at 180 mmHg where the
#: equations allow 200, and HbA1c at 4.5 % where they allow 3 %; the stricter limits are kept here.
VALID_RANGES: Mapping[str, tuple[float, float]] = {
    "age": (30.0, 79.0),
    "sbp": (90.0, 180.0),
    "total_chol": (130.0, 320.0),
    "hdl": (20.0, 100.0),
    "egfr": (15.0, 140.0),
    "bmi": (18.5, 39.9),
    "hba1c": (4.5, 15.0),
    "uacr": (0.1, 25000.0),
}

#: Above this age 30-year estimates are flagged as questionable (preventr, following Khan 2024,
#: whose 30-year models were derived in people aged 30–59).
MAX_AGE_30_YEAR = 59.0

# Supplement term labels (first column of the tables) → term names used by ``_terms``.
_LABELS: Mapping[str, str] = {
    "Age, per 10 years": "age",
    "Age, 10 years": "age",
    "Age squared": "age_squared",
    "non-HDL-C per 1 mmol/L": "non_hdl",
    "HDL-C per 0.3 mmol/L": "hdl",
    "SBP <110 per 20 mmHg": "sbp_lt_110",
    "SBP ≥110 per 20 mmHg": "sbp_gte_110",
    "Diabetes": "diabetes",
    "Current smoking": "smoker",
    "BMI <30, per 5 kg/m2": "bmi_lt_30",
    "BMI 30+, per 5 kg/m2": "bmi_gte_30",
    "eGFR <60, per -15 ml": "egfr_lt_60",
    "eGFR 60+, per -15 ml": "egfr_gte_60",
    "Anti-hypertensive use": "bp_treated",
    "Statin use": "statin",
    "Treated SBP ≥110 mm Hg per 20 mm Hg": "bp_treated_x_sbp_gte_110",
    "Treated non-HDL-C": "statin_x_non_hdl",
    "Age per 10yr * non-HDL-C per 1 mmol/L": "age_x_non_hdl",
    "Age per 10yr * HDL-C per 0.3 mmol/L": "age_x_hdl",
    "Age per 10yr * SBP ≥110 mm Hg per 20 mmHg": "age_x_sbp_gte_110",
    "Age per 10yr * diabetes": "age_x_diabetes",
    "Age per 10yr * current smoking": "age_x_smoker",
    "Age per 10yr * BMI 30+ per 5 kg/m2": "age_x_bmi_gte_30",
    "Age per 10yr * eGFR <60, per -15 ml": "age_x_egfr_lt_60",
    "SDI decile categories 4-6 vs. 1-3": "sdi_4_to_6",
    "SDI decile categories 7-10 vs. 1-3": "sdi_7_to_10",
    "Missing SDI": "sdi_missing",
    "ln-ACR, mg/g, per 1 ln unit": "ln_uacr",
    "Missing ACR/PCR/Dipstick": "uacr_missing",
    "HbA1c in DM, per 1%": "hba1c_diabetes",
    "HbA1c no DM, per 1%": "hba1c_no_diabetes",
    "Missing HbA1c": "hba1c_missing",
    "Constant": "constant",
}
_BMI_TERMS = frozenset({"bmi_lt_30", "bmi_gte_30", "age_x_bmi_gte_30"})


@functools.cache
def coefficients(model: str, horizon: int, sex: str) -> tuple[tuple[str, ...], FloatArray]:
    """Term names and β matrix of one PREVENT model (loaded once per process).

    Returns
    -------
    terms : tuple of str, length n_terms
    beta : ndarray, shape (n_terms, 5)
        Columns in the order of :data:`OUTCOMES`; log-odds per unit of each term.
    """
    rows = data_table(f"prevent/prevent_{model}_{horizon}yr.csv")
    terms = tuple(_LABELS[row["beta_coefficients"]] for row in rows)
    beta = np.array([[float(row[f"{sex}_{o}"]) for o in OUTCOMES] for row in rows])
    not_hf = [i for i, o in enumerate(OUTCOMES) if o != "heart_failure"]
    bmi_rows = [i for i, t in enumerate(terms) if t in _BMI_TERMS]
    # prevent() drops BMI when it is missing; that is exact only if BMI enters heart failure alone.
    if np.any(beta[np.ix_(bmi_rows, not_hf)] != 0.0):
        raise ValueError(
            f"PREVENT {model} {horizon}-year table has BMI terms outside heart failure"
        )
    return terms, beta


def _select_model(has_hba1c: bool, has_uacr: bool, has_sdi: bool) -> str:
    """preventr's rule: one optional predictor picks its own model, two or more the full model."""
    given = [
        name for name, has in (("hba1c", has_hba1c), ("uacr", has_uacr), ("sdi", has_sdi)) if has
    ]
    if not given:
        return "base"
    return given[0] if len(given) == 1 else "full"


def _terms(
    *,
    age: FloatArray,
    sbp: FloatArray,
    bp_treated: FloatArray,
    total_chol: FloatArray,
    hdl: FloatArray,
    statin: FloatArray,
    diabetes: FloatArray,
    smoker: FloatArray,
    egfr: FloatArray,
    bmi: FloatArray | None,
    hba1c: FloatArray | None,
    uacr: FloatArray | None,
    sdi_decile: FloatArray | None,
) -> dict[str, FloatArray]:
    """Centred and spline-transformed PREVENT terms (Khan 2024 supplement; preventr ``prep_terms``).

    Each spline piece is centred where its centring value can occur (SBP 130, BMI 25, eGFR 90) and
    the other piece at the knot (SBP 110, BMI 30, eGFR 60).
    """
    a = (age - 55.0) / 10.0
    non_hdl = (total_chol - hdl) * MG_DL_TO_MMOL_L - 3.5
    hdl_t = (hdl * MG_DL_TO_MMOL_L - 1.3) / 0.3
    sbp_hi = (np.maximum(sbp, 110.0) - 130.0) / 20.0
    egfr_lo = (np.minimum(egfr, 60.0) - 60.0) / -15.0
    zero = np.zeros_like(a)
    bmi_v = zero + 25.0 if bmi is None else bmi
    bmi_hi = (np.maximum(bmi_v, 30.0) - 30.0) / 5.0
    terms = {
        "age": a,
        "age_squared": a * a,
        "non_hdl": non_hdl,
        "hdl": hdl_t,
        "sbp_lt_110": (np.minimum(sbp, 110.0) - 110.0) / 20.0,
        "sbp_gte_110": sbp_hi,
        "diabetes": diabetes,
        "smoker": smoker,
        "bmi_lt_30": (np.minimum(bmi_v, 30.0) - 25.0) / 5.0,
        "bmi_gte_30": bmi_hi,
        "egfr_lt_60": egfr_lo,
        "egfr_gte_60": (np.maximum(egfr, 60.0) - 90.0) / -15.0,
        "bp_treated": bp_treated,
        "statin": statin,
        "bp_treated_x_sbp_gte_110": bp_treated * sbp_hi,
        "statin_x_non_hdl": statin * non_hdl,
        "age_x_non_hdl": a * non_hdl,
        "age_x_hdl": a * hdl_t,
        "age_x_sbp_gte_110": a * sbp_hi,
        "age_x_diabetes": a * diabetes,
        "age_x_smoker": a * smoker,
        "age_x_bmi_gte_30": a * bmi_hi,
        "age_x_egfr_lt_60": a * egfr_lo,
        "constant": zero + 1.0,
        "hba1c_diabetes": zero if hba1c is None else (hba1c - 5.3) * diabetes,
        "hba1c_no_diabetes": zero if hba1c is None else (hba1c - 5.3) * (1.0 - diabetes),
        "hba1c_missing": zero + (hba1c is None),
        "ln_uacr": zero if uacr is None else np.log(uacr),
        "uacr_missing": zero + (uacr is None),
        "sdi_4_to_6": zero
        if sdi_decile is None
        else ((sdi_decile >= 4) & (sdi_decile <= 6)) + zero,
        "sdi_7_to_10": zero if sdi_decile is None else (sdi_decile >= 7) + zero,
        "sdi_missing": zero + (sdi_decile is None),
    }
    return terms


def _log_odds(
    terms: Mapping[str, FloatArray],
    names: tuple[str, ...],
    beta: FloatArray,
    shape: tuple[int, ...],
) -> FloatArray:
    """Log-odds, shape ``shape + (5,)``.

    Terms that are the same for every element (patient constants along a trajectory) are
    folded into one offset, so the matrix product only spans the terms that actually vary.
    """
    offset = np.zeros(len(OUTCOMES))
    varying: list[int] = []
    for i, name in enumerate(names):
        term = terms[name]
        if term.size == 1:
            offset += float(term.reshape(())) * beta[i]
        else:
            varying.append(i)
    if not varying:
        return np.broadcast_to(offset, (*shape, len(OUTCOMES))).copy()
    design = np.stack([np.broadcast_to(terms[names[i]], shape) for i in varying], axis=-1)
    return design @ beta[varying] + offset


_Inputs = tuple[
    dict[str, FloatArray], dict[str, FloatArray | None], FloatArray | None, dict[str, FloatArray]
]


def _checked_inputs(
    *,
    age: Numeric,
    sbp: Numeric,
    bp_treated: Flag,
    total_chol: Numeric,
    hdl: Numeric,
    statin: Flag,
    diabetes: Flag,
    smoker: Flag,
    egfr: Numeric,
    bmi: Numeric | None,
    hba1c: Numeric | None,
    uacr: Numeric | None,
    sdi_decile: Numeric | None,
) -> _Inputs:
    """Required measurements, optional measurements, SDI decile and indicators as float arrays."""
    x = {
        "age": as_measurement("age", age),
        "sbp": as_measurement("sbp", sbp),
        "total_chol": as_measurement("total_chol", total_chol),
        "hdl": as_measurement("hdl", hdl),
        "egfr": as_measurement("egfr", egfr),
    }
    if np.any(x["hdl"] > x["total_chol"]):
        raise ValueError("total_chol must not be below hdl (both mg/dL)")
    optional = {
        name: None if value is None else as_measurement(name, value)
        for name, value in (("bmi", bmi), ("hba1c", hba1c), ("uacr", uacr))
    }
    sdi = None if sdi_decile is None else as_measurement("sdi_decile", sdi_decile)
    if sdi is not None and np.any((sdi < 1) | (sdi > 10) | (sdi != np.round(sdi))):
        raise ValueError("sdi_decile must be an integer from 1 to 10")
    flags_in = {
        "bp_treated": as_indicator("bp_treated", bp_treated),
        "statin": as_indicator("statin", statin),
        "diabetes": as_indicator("diabetes", diabetes),
        "smoker": as_indicator("smoker", smoker),
    }
    return x, optional, sdi, flags_in


def prevent(
    *,
    age: Numeric,
    sex: str,
    sbp: Numeric,
    bp_treated: Flag,
    total_chol: Numeric,
    hdl: Numeric,
    statin: Flag,
    diabetes: Flag,
    smoker: Flag,
    egfr: Numeric,
    bmi: Numeric | None = None,
    hba1c: Numeric | None = None,
    uacr: Numeric | None = None,
    sdi_decile: Numeric | None = None,
    horizon: int = 10,
) -> RiskDict:
    """AHA PREVENT risk of five cardiovascular outcomes (Khan 2024).

    The model variant follows preventr: the base model without optional predictors; the HbA1c, UACR
    or SDI model when exactly one of ``hba1c``, ``uacr``, ``sdi_decile`` is given; the full model when
    two or more are (the missing one enters through its missing-value indicator).

    Parameters
    ----------
    age : float or array_like
        Years; validated 30–79.
    sex : {"female", "male"}
    sbp : float or array_like
        Systolic blood pressure, mmHg; validated 90–180.
    bp_treated, statin, diabetes, smoker : bool, 0/1 or array_like
        Antihypertensive use, statin use, diabetes, current smoking.
    total_chol, hdl : float or array_like
        Total and HDL cholesterol, mg/dL; validated 130–320 and 20–100.
    egfr : float or array_like
        mL/min/1.73 m²; validated 15–140.
    bmi : float or array_like, optional
        kg/m²; validated 18.5–39.9. BMI enters only the heart-failure equations; without it
        ``heart_failure`` is NaN and the other outcomes are unaffected.
    hba1c : float or array_like, optional
        HbA1c, % (NGSP); validated 4.5–15.
    uacr : float or array_like, optional
        Urine albumin-to-creatinine ratio, mg/g; validated 0.1–25000.
    sdi_decile : int or array_like, optional
        Social Deprivation Index decile, 1–10.
    horizon : {10, 30}
        Years. 30-year risks above age 59 carry a note (the 30-year models were derived at 30–59).

    Returns
    -------
    RiskDict
        ``{"total_cvd", "ascvd", "heart_failure", "chd", "stroke"}`` → risk as a proportion (0–1):
        floats for scalar inputs, arrays of the broadcast input shape otherwise. Attributes
        ``model``, ``horizon``, ``out_of_range``, ``in_range`` and ``notes``.

    Raises
    ------
    ValueError
        Naming the field, for NaN/negative/zero measurements, HDL above total cholesterol,
        non-binary indicators, an unknown sex, an SDI decile outside 1–10 or a horizon other
        than 10 or 30.
    """
    sex = check_choice("sex", sex, ("female", "male"))
    if isinstance(horizon, bool) or horizon not in (10, 30):
        raise ValueError(f"horizon must be 10 or 30 years; got {horizon!r}")
    x, optional, sdi, flags_in = _checked_inputs(
        age=age,
        sbp=sbp,
        bp_treated=bp_treated,
        total_chol=total_chol,
        hdl=hdl,
        statin=statin,
        diabetes=diabetes,
        smoker=smoker,
        egfr=egfr,
        bmi=bmi,
        hba1c=hba1c,
        uacr=uacr,
        sdi_decile=sdi_decile,
    )
    arrays = [
        *x.values(),
        *flags_in.values(),
        *(v for v in (*optional.values(), sdi) if v is not None),
    ]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))

    model = _select_model(
        optional["hba1c"] is not None, optional["uacr"] is not None, sdi is not None
    )
    names, beta = coefficients(model, horizon, sex)
    terms = _terms(
        **x,
        **flags_in,
        bmi=optional["bmi"],
        hba1c=optional["hba1c"],
        uacr=optional["uacr"],
        sdi_decile=sdi,
    )
    risk = 1.0 / (1.0 + np.exp(-_log_odds(terms, names, beta, shape)))

    notes: list[str] = []
    if optional["bmi"] is None:
        risk[..., OUTCOMES.index("heart_failure")] = np.nan
        notes.append("heart_failure not estimated: bmi not given")
    if horizon == 30 and np.any(x["age"] > MAX_AGE_30_YEAR):
        notes.append(f"30-year estimates above age {MAX_AGE_30_YEAR:g} are questionable")
    checks = {
        name: (v, *VALID_RANGES[name]) for name, v in {**x, **optional}.items() if v is not None
    }
    flags, in_range = range_flags(checks, shape)

    result = RiskDict(
        {
            o: float(risk[..., i]) if not shape else np.ascontiguousarray(risk[..., i])
            for i, o in enumerate(OUTCOMES)
        }
    )
    result.model = model
    result.horizon = horizon
    result.out_of_range = flags
    result.in_range = bool(in_range) if not shape else in_range
    result.notes = tuple(notes)
    return result
