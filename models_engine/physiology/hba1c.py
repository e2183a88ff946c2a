"""Conversions between glucose and HbA1c, and a patient-specific fasting-glucose-to-HbA1c offset.

The mechanistic glycaemia models simulate fasting glucose, while HbA1c tracks mean glucose.
ADAG relates HbA1c to mean glucose; the gap between a patient's fasting and mean glucose is
captured by one offset fitted to their paired fasting-glucose/HbA1c history.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: ADAG regression, estimated average glucose (mg/dl) = 28.7 * HbA1c (%) - 46.7.
#: Nathan DM et al., *Diabetes Care* 2008;31:1473, doi:10.2337/dc08-0545.
ADAG_SLOPE_MG_DL: Final[float] = 28.7
#: Intercept of the ADAG regression (mg/dl), same source.
ADAG_INTERCEPT_MG_DL: Final[float] = -46.7

#: IFCC-NGSP master equation, NGSP (%) = 0.09148 * IFCC (mmol/mol) + 2.152: the method
#: comparison of Hoelzel W et al., *Clin Chem* 2004;50:166, with the coefficients the NGSP
#: publishes for conversion (reference/twin-model.md §2.3).
IFCC_SLOPE: Final[float] = 0.09148
#: Intercept (%) of the IFCC-NGSP master equation, same source.
IFCC_INTERCEPT_PERCENT: Final[float] = 2.152

#: Accepted input ranges. Wide enough for any measured value, narrow enough to catch unit slips
#: (glucose in mmol/L passed as mg/dl, HbA1c as a fraction or in mmol/mol).
GLUCOSE_RANGE_MG_DL: Final[tuple[float, float]] = (20.0, 1000.0)
HBA1C_RANGE_PERCENT: Final[tuple[float, float]] = (2.5, 20.0)
HBA1C_RANGE_MMOL_MOL: Final[tuple[float, float]] = (4.0, 195.0)
OFFSET_RANGE_PERCENT: Final[tuple[float, float]] = (-10.0, 10.0)


def _validate(
    name: str, value: npt.ArrayLike, bounds: tuple[float, float], unit: str
) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    lo, hi = bounds
    if np.isnan(arr).any() or (arr < lo).any() or (arr > hi).any():
        raise ValueError(f"{name} must be in [{lo}, {hi}] {unit}")
    return arr


def hba1c_from_mean_glucose(mean_glucose_mg_dl: npt.ArrayLike) -> FloatArray:
    """HbA1c implied by a mean glucose, by inverting the ADAG regression.

    Parameters
    ----------
    mean_glucose_mg_dl : array_like
        Mean plasma glucose (mg/dl), any shape, in [20, 1000].

    Returns
    -------
    ndarray
        HbA1c (% NGSP/DCCT), same shape.
    """
    g = _validate("mean_glucose_mg_dl", mean_glucose_mg_dl, GLUCOSE_RANGE_MG_DL, "mg/dl")
    out: FloatArray = (g - ADAG_INTERCEPT_MG_DL) / ADAG_SLOPE_MG_DL
    return out


def mean_glucose_from_hba1c(hba1c_percent: npt.ArrayLike) -> FloatArray:
    """ADAG estimated average glucose for an HbA1c.

    Parameters
    ----------
    hba1c_percent : array_like
        HbA1c (% NGSP/DCCT), any shape, in [2.5, 20].

    Returns
    -------
    ndarray
        Estimated average glucose (mg/dl), same shape.
    """
    a1c = _validate("hba1c_percent", hba1c_percent, HBA1C_RANGE_PERCENT, "%")
    out: FloatArray = ADAG_SLOPE_MG_DL * a1c + ADAG_INTERCEPT_MG_DL
    return out


def hba1c_percent_to_mmol_mol(hba1c_percent: npt.ArrayLike) -> FloatArray:
    """NGSP/DCCT HbA1c (%) to IFCC units (mmol/mol), any shape, by the master equation."""
    a1c = _validate("hba1c_percent", hba1c_percent, HBA1C_RANGE_PERCENT, "%")
    out: FloatArray = (a1c - IFCC_INTERCEPT_PERCENT) / IFCC_SLOPE
    return out


def hba1c_mmol_mol_to_percent(hba1c_mmol_mol: npt.ArrayLike) -> FloatArray:
    """IFCC HbA1c (mmol/mol) to NGSP/DCCT units (%), any shape, by the master equation."""
    ifcc = _validate("hba1c_mmol_mol", hba1c_mmol_mol, HBA1C_RANGE_MMOL_MOL, "mmol/mol")
    out: FloatArray = IFCC_SLOPE * ifcc + IFCC_INTERCEPT_PERCENT
    return out


def fit_hba1c_offset(
    fpg_mg_dl: npt.ArrayLike,
    hba1c_percent: npt.ArrayLike,
    *,
    prior_offset: float = 0.0,
    prior_weight: float = 0.0,
) -> float:
    """Patient-specific offset between measured HbA1c and the ADAG value of fasting glucose.

    The model is ``HbA1c = hba1c_from_mean_glucose(FPG) + offset``: fasting glucose stands in for
    mean glucose, and the offset absorbs the patient's post-prandial excursions and glycation
    rate. The least-squares offset is the mean residual; ``prior_weight`` pseudo-observations at
    ``prior_offset`` shrink it when few pairs are available.

    Parameters
    ----------
    fpg_mg_dl : array_like, shape (n,)
        Fasting plasma glucose (mg/dl), each paired with the HbA1c at the same index.
    hba1c_percent : array_like, shape (n,)
        HbA1c (%) measured around the same time as the glucose.
    prior_offset : float
        Offset (%) the estimate is shrunk towards, in [-10, 10].
    prior_weight : float
        Weight of the prior in number of pairs, >= 0. With ``n = 0`` it must be > 0.

    Returns
    -------
    float
        Offset (% HbA1c).
    """
    fpg = _validate("fpg_mg_dl", fpg_mg_dl, GLUCOSE_RANGE_MG_DL, "mg/dl")
    a1c = _validate("hba1c_percent", hba1c_percent, HBA1C_RANGE_PERCENT, "%")
    if fpg.ndim != 1 or fpg.shape != a1c.shape:
        raise ValueError(
            f"fpg_mg_dl and hba1c_percent must be 1-D arrays of equal length, got {fpg.shape} and {a1c.shape}"
        )
    _validate("prior_offset", prior_offset, OFFSET_RANGE_PERCENT, "%")
    if not (prior_weight >= 0.0) or not np.isfinite(prior_weight):
        raise ValueError(f"prior_weight must be a finite number >= 0, got {prior_weight}")
    if fpg.size == 0 and prior_weight == 0.0:
        raise ValueError("fpg_mg_dl is empty and prior_weight is 0: nothing to fit")
    residual = a1c - hba1c_from_mean_glucose(fpg)
    return float((residual.sum() + prior_weight * prior_offset) / (fpg.size + prior_weight))


def hba1c_from_fasting_glucose(
    fpg_mg_dl: npt.ArrayLike, offset_percent: npt.ArrayLike = 0.0
) -> FloatArray:
    """HbA1c predicted from fasting glucose with a patient offset (:func:`fit_hba1c_offset`).

    Parameters
    ----------
    fpg_mg_dl : array_like
        Fasting plasma glucose (mg/dl), any shape, in [20, 1000].
    offset_percent : array_like
        Offset (%), broadcastable against ``fpg_mg_dl``, in [-10, 10].

    Returns
    -------
    ndarray
        HbA1c (%), broadcast shape of the inputs.
    """
    offset = _validate("offset_percent", offset_percent, OFFSET_RANGE_PERCENT, "%")
    out: FloatArray = hba1c_from_mean_glucose(fpg_mg_dl) + offset
    return out
