"""Prequential weighing: a structural model that predicts a patient's own past badly loses weight."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models_engine import prequential
from models_engine.calibration import calibrate_batch
from models_engine.forecast import Draws, forecast, forecast_batch, simulate
from tests.fixtures.twin.factories import make_history


def _scores(y, slope_prior, *, slope_sd=0.1, n=16, years=8.0, seed=0):
    """One-step scores of ``n`` DBP-like readings ``y(t_years)`` under a given slope prior."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-years * 365.25, 0.0, n)[None, :]
    z = y(t / 365.25) + 3.0 * rng.standard_normal(t.shape)
    return prequential.one_step_scores(
        t,
        z,
        np.zeros_like(z),
        np.full(z.shape, 9.0),
        np.ones_like(z),
        np.array([[80.0, slope_prior, 1.0]]),
        np.array([[12.0, slope_sd, 0.3]]),
        np.ones(1),
        walk_var=np.array([4.0]),
        slope_walk_var=0.0,
        dof=4.0,
    )


def test_a_structural_model_that_is_wrong_for_a_patient_loses_weight_to_the_local_level():
    # the population curve says -3 mmHg/yr and binds tightly; this patient's DBP stays at 85
    s, loc, *_ = _scores(lambda yrs: 85.0 + 0.0 * yrs, -3.0)
    weight = prequential.posterior_weight(s - loc, 0.5)
    assert weight[0] < 0.05


def test_a_patient_who_follows_the_structural_trend_keeps_its_weight():
    s, loc, *_ = _scores(lambda yrs: 85.0 + 3.0 * yrs, 3.0)
    assert prequential.posterior_weight(s - loc, 0.5)[0] > 0.9


def test_the_local_level_ends_near_the_newest_readings_after_a_lasting_step():
    def step(yrs):
        return np.where(yrs > -2.0, 70.0, 90.0)

    *_, level, level_var = _scores(step, 0.0, seed=3)
    assert abs(level[0] - 70.0) < 3.0
    assert 0.0 < level_var[0] < 9.0


def test_the_batch_prior_is_estimated_from_the_batch_and_needs_enough_patients():
    against = np.full(40, -5.0)
    assert prequential.batch_prior(against, np.ones(40, bool)) == pytest.approx(
        prequential.PRIOR_BOUNDS[0]
    )
    mixed = np.r_[np.full(20, 8.0), np.full(20, -8.0)]
    assert 0.4 <= prequential.batch_prior(mixed, np.ones(40, bool)) <= 0.6
    few = np.full(3, 8.0)
    assert prequential.batch_prior(few, np.ones(3, bool)) == prequential.DEFAULT_PRIOR


def _local_only(cal, variable, level):
    fit = dataclasses.replace(
        cal.fits[variable], weight=0.0, local_level=level, local_level_var=0.0
    )
    return dataclasses.replace(cal, fits={**cal.fits, variable: fit})


def test_a_fit_given_to_the_local_level_forecasts_that_level_in_both_forecasts():
    cal = calibrate_batch([make_history(seed=4)])[0]
    cal = _local_only(cal, "sbp", 123.0)
    t = np.array([30.0, 365.0])
    sims = simulate(cal, t, cal.history.treatments, Draws.make(2000, t.size, 1))
    assert np.median(sims["sbp"][1], axis=0) == pytest.approx([123.0, 123.0], abs=1.5)
    single = forecast(cal, n_samples=2000, step_days=365.25, seed=2, with_risk=False)
    batch = forecast_batch([cal], n_samples=2000, seed=1)
    assert batch.bands["sbp"][0, 0, :3] == pytest.approx(
        single.variables["sbp"].median[:3], abs=1.5
    )
    assert batch.bands["sbp"][0, 0, 1] == pytest.approx(123.0, abs=1.5)


def test_calibration_records_each_variables_structural_weight():
    cals = calibrate_batch([make_history(patient_id=str(i), seed=i) for i in range(3)])
    for cal in cals:
        for fit in cal.fits.values():
            assert 0.0 <= fit.weight <= 1.0
        assert np.isfinite(cal.fits["sbp"].local_level)
        assert "structural_weight" in cal.to_dict()["fits"]["sbp"]


def _series(levels, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    z = np.asarray(levels, float)[None, :]
    z = z + noise * rng.standard_normal(z.shape)
    t = (np.arange(z.shape[1]) * 180.0)[None, :]
    return t, z, np.full(z.shape, noise**2), np.ones(z.shape, bool)


def test_a_simulated_step_at_the_newest_reading_moves_the_level_when_shifts_are_allowed():
    t, z, r, use = _series([6.0] * 9 + [3.0], noise=0.1)
    common = dict(walk_var=np.array([0.01]), dof=4.0)
    _, without, _ = prequential.local_level_scores(
        t, z, r, use, shift_prob=0.0, shift_scale=0.0, **common
    )
    _, with_shifts, _ = prequential.local_level_scores(
        t, z, r, use, shift_prob=0.05, shift_scale=8.0, **common
    )
    assert abs(with_shifts[0] - 3.0) < 0.5 < abs(without[0] - 3.0)


def test_the_batch_chooses_shifts_only_when_its_patients_change_in_steps():
    rng = np.random.default_rng(1)
    stepped = [
        _series(np.r_[np.full(6, 90.0), np.full(6, 90.0 + rng.choice([-20, 20]))], seed=i)
        for i in range(20)
    ]
    steady = [_series(np.full(12, 90.0), seed=i) for i in range(20)]
    picks = []
    for batch in (stepped, steady):
        t, z, r, use = (np.concatenate(a) for a in zip(*batch, strict=True))
        picks.append(
            prequential.estimate_shift(
                t,
                z,
                r,
                use,
                walk_var=np.full(20, 0.01),
                dof=4.0,
                default=(0.05, 4.0),
                min_patients=10,
            )
        )
    # expected shift variance per step, in measurement variances
    stepped_var, steady_var = (prob * scale**2 for prob, scale in picks)
    assert stepped_var > 10.0 * steady_var and steady_var < 0.1


def test_the_slope_prior_loosens_for_a_batch_that_leaves_the_population_curve():
    rng = np.random.default_rng(2)
    n = 40
    common = dict(hyper_log_sd=1.0, min_patients=10)
    leaving = prequential.slope_prior_scale(
        rng.normal(0.0, 1.5, n), np.full(n, 0.01), np.zeros(n), np.full(n, 0.4), **common
    )
    following = prequential.slope_prior_scale(
        rng.normal(0.0, 0.05, n), np.full(n, 0.01), np.zeros(n), np.full(n, 0.4), **common
    )
    assert leaving > 2.0 and following < 0.5
    few = prequential.slope_prior_scale(np.ones(3), np.ones(3), np.zeros(3), np.ones(3), **common)
    assert few == 1.0
