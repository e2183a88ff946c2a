"""How surprising a new reading is under the current forecast.

A reading far outside the predictive distribution means the twin is out of date (a new drug, an
illness, a data error): the caller recalibrates or asks a clinician to look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models_engine.forecast import Forecast


@dataclass(frozen=True)
class DriftResult:
    """Surprise of one reading: predictive ``z``, ``percentile`` (0-100), log density, flags."""

    variable: str
    t_day: float
    value: float
    predicted_median: float
    z: float
    percentile: float
    log_density: float
    outside80: bool
    outside95: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-able fields."""
        return dict(vars(self))


def validate_reading(variable: str, forecast: Forecast, t_day: float, value: float) -> None:
    """Raise ``ValueError`` for an unknown variable, a non-finite value or a day off the forecast."""
    if variable not in forecast.variables:
        raise ValueError(f"variable must be one of {sorted(forecast.variables)}, got {variable!r}")
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    if not (forecast.t_days[0] <= t_day <= forecast.t_days[-1]):
        raise ValueError(
            f"t_day must be within the forecast ({forecast.t_days[0]}-{forecast.t_days[-1]}), got {t_day}"
        )


def surprise(forecast: Forecast, variable: str, t_day: float, value: float) -> DriftResult:
    """Score a new reading against the forecast's predictive samples.

    Parameters
    ----------
    forecast : Forecast
    variable : str
        A forecast variable (e.g. "sbp").
    t_day : float
        Day of the reading (relative to the reference date), within the forecast.
    value : float
        The reading, canonical units.

    Returns
    -------
    DriftResult
        ``z`` against the predictive mean and SD, the empirical percentile of the reading among
        the predictive samples, a Gaussian-kernel log predictive density (Silverman bandwidth),
        and whether the reading lies outside the central 80 % / 95 % interval.
    """
    validate_reading(variable, forecast, t_day, value)
    samples = forecast.at(variable, t_day)
    mean = float(samples.mean())
    sd = float(samples.std(ddof=1))
    n = samples.size
    pct = 100.0 * (float((samples < value).sum()) + 0.5 * float((samples == value).sum())) / n
    bw = max(1.06 * sd * n ** (-0.2), 1e-9)
    dens = np.exp(-0.5 * ((value - samples) / bw) ** 2).mean() / (bw * math.sqrt(2.0 * math.pi))
    lo95, hi95, lo80, hi80 = np.quantile(samples, [0.025, 0.975, 0.1, 0.9])
    return DriftResult(
        variable=variable,
        t_day=t_day,
        value=value,
        predicted_median=float(np.median(samples)),
        z=(value - mean) / sd if sd > 0 else 0.0,
        percentile=pct,
        log_density=float(np.log(max(dens, 1e-300))),
        outside80=bool(value < lo80 or value > hi80),
        outside95=bool(value < lo95 or value > hi95),
    )
