"""Drift scores say how surprising a new reading is under the current forecast."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models_engine.calibration import DAYS_PER_YEAR, calibrate
from models_engine.drift import surprise
from models_engine.forecast import Draws, forecast, time_grid
from tests.fixtures.twin.factories import make_history


@pytest.fixture(scope="module")
def fc():
    return forecast(
        calibrate(make_history(seed=4)), horizon_years=2, n_samples=1000, with_risk=False
    )


def test_a_reading_at_the_forecast_median_is_unsurprising(fc):
    t = 180.0
    median = float(fc.variables["sbp"].median[6])
    r = surprise(fc, "sbp", float(fc.t_days[6]), median)
    assert 40 <= r.percentile <= 60
    assert abs(r.z) < 0.3
    assert not r.outside80 and not r.outside95
    del t


def test_a_reading_far_above_the_band_is_flagged(fc):
    t = float(fc.t_days[6])
    median = float(fc.variables["sbp"].median[6])
    r = surprise(fc, "sbp", t, median + 50.0)
    assert r.outside95 and r.outside80
    assert r.z > 2.0 and r.percentile > 97.5


def test_surprise_grows_with_distance_from_the_forecast(fc):
    t = float(fc.t_days[12])
    med = float(fc.variables["hba1c"].median[12])
    near = surprise(fc, "hba1c", t, med + 0.1)
    far = surprise(fc, "hba1c", t, med + 0.6)
    assert far.log_density < near.log_density
    assert far.percentile > near.percentile


def test_it_rejects_unknown_variables_and_days_off_the_forecast(fc):
    with pytest.raises(ValueError, match="variable"):
        surprise(fc, "cholesterol", 10.0, 200.0)
    with pytest.raises(ValueError, match="t_day"):
        surprise(fc, "sbp", 5000.0, 140.0)


def test_a_reading_between_grid_days_keeps_the_measurement_error_spread():
    # a reading on a day between two grid days: its predictive spread is that of the grid days
    # around it, not the smaller spread of an average of two errors, even when each day's
    # errors are drawn independently
    cal = calibrate(make_history(seed=2))
    t = time_grid(cal.until, 10.0, DAYS_PER_YEAR / 12.0)
    shared = Draws.make(2000, t.size, 1)
    rng = np.random.default_rng(3)
    per_day = dataclasses.replace(
        shared, noise={v: rng.standard_normal(x.shape) for v, x in shared.noise.items()}
    )
    fc = forecast(cal, n_samples=2000, draws=per_day, with_risk=False)
    assert fc.t_days.size == t.size
    for v in ("sbp", "hba1c", "ldl", "weight", "egfr"):
        grid = 0.5 * (fc.at(v, float(t[5])).std() + fc.at(v, float(t[6])).std())
        mid = fc.at(v, 0.5 * float(t[5] + t[6])).std()
        assert mid == pytest.approx(grid, rel=0.06), v
        np.testing.assert_allclose(fc.at(v, float(t[5])), fc.variables[v].observed[:, 5])
