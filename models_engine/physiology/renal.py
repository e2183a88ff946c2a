"""eGFR sub-model: a personalised linear decline.

The prior slope is the age-related decline of about 1 mL/min/1.73 m² per year after 40 (Glassock
RJ, Winearls C. Trans Am Clin Climatol Assoc 2009;120:419; see priors.csv); the calibration fits a
patient-specific level and slope. eGFR cannot fall below zero, so forecasts are floored there.
"""

from __future__ import annotations

import numpy as np

from models_engine.history import FloatArray

#: Lowest eGFR the forecast reports, mL/min/1.73 m² (a physical floor, not a clinical threshold).
EGFR_FLOOR = 1.0
#: KDIGO 2012 CKD stage G3a threshold, mL/min/1.73 m².
CKD_THRESHOLD = 60.0


def rhs(t: float, y: FloatArray, slope_per_day: float) -> FloatArray:
    """d eGFR / dt (mL/min/1.73 m² per day) for state ``y`` of shape (1,); zero at the floor."""
    del t
    return np.array([slope_per_day if y[0] > EGFR_FLOOR else 0.0])


def project(
    egfr0: FloatArray | float, slope_per_year: FloatArray | float, years: FloatArray
) -> FloatArray:
    """eGFR after ``years`` from ``egfr0`` with a constant slope, floored at ``EGFR_FLOOR``.

    Parameters
    ----------
    egfr0 : array_like, shape (m,) or scalar
        mL/min/1.73 m².
    slope_per_year : array_like, shape (m,) or scalar
        mL/min/1.73 m² per year.
    years : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (m, n) or (n,)
    """
    e0 = np.asarray(egfr0, dtype=np.float64)[..., None]
    s = np.asarray(slope_per_year, dtype=np.float64)[..., None]
    out: FloatArray = np.maximum(e0 + s * np.asarray(years), EGFR_FLOOR)
    return out
