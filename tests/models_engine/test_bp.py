"""The blood-pressure sub-model follows the Herrgårdh 2022 tracks and its driver is accurate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from models_engine.physiology import bp


def test_it_reproduces_the_reference_track_of_the_hybrid_model():
    assert float(bp.sbp_on_track(30.0, bp.REF_SBP)) == pytest.approx(117.86)
    # the reference track rises by k1_SBP = 0.4081 mmHg per year
    assert float(bp.sbp_on_track(70.0, bp.REF_SBP)) == pytest.approx(117.86 + 40 * 0.4081)


def test_it_makes_diastolic_pressure_peak_near_age_50_6():
    ages = np.linspace(30, 80, 501)
    dbp = bp.dbp_on_track(ages, 80.67)
    assert ages[np.argmax(dbp)] == pytest.approx(0.9262 / 0.0183, abs=0.2)


def test_it_finds_the_track_through_a_patients_reading():
    ages = np.array([35.0, 50.0, 72.0])
    sbp = np.array([118.0, 150.0, 171.0])
    ic = bp.track_from_reading(ages, sbp)
    assert np.allclose(bp.sbp_on_track(ages, ic), sbp)
    ic_d = bp.dbp_track_from_reading(ages, np.array([70.0, 90.0, 80.0]))
    assert np.allclose(bp.dbp_on_track(ages, ic_d), [70.0, 90.0, 80.0])


def test_it_gives_higher_tracks_steeper_personal_slopes():
    slopes = bp.sbp_slope(50.0, np.array([120.0, 140.0, 160.0]))
    assert np.all(np.diff(slopes) > 0)
    assert float(bp.sbp_slope(30.0, 131.61)) == pytest.approx(
        0.4081 * (131.61 - 99.867) / (117.86 - 99.867)
    )


def test_its_fixed_step_driver_matches_a_tight_solve_ivp_reference():
    age0, sbp0, dbp0 = 55.0, 150.0, 92.0
    eff = np.array([[-9.1, -5.5], [-4.45, 0.0]])
    tau = np.array([14.0, 30.0]) / 365.25
    start = np.array([0.5, 2.0])
    t, sbp, dbp = bp.simulate(
        age0, sbp0, dbp0, 5.0, effects_mmhg=eff, taus_years=tau, starts_years=start
    )
    ic_s = float(bp.track_from_reading(age0, sbp0))
    ic_d = float(bp.dbp_track_from_reading(age0, dbp0))

    def rhs(tt, y):
        nat = bp.rhs(age0 + tt, y[:2], ic_s, ic_d)
        on = (tt >= start).astype(float)
        x = y[2:].reshape(2, 2)
        return np.concatenate([nat, ((on[:, None] * eff - x) / tau[:, None]).ravel()])

    ref = solve_ivp(
        rhs, (0, 5.0), [sbp0, dbp0, 0, 0, 0, 0], t_eval=t, rtol=1e-10, atol=1e-10, max_step=0.01
    )
    ref_sbp = ref.y[0] + ref.y[2] + ref.y[4]
    ref_dbp = ref.y[1] + ref.y[3] + ref.y[5]
    # the driver switches drugs on at grid points, so allow one step of onset mismatch
    assert np.max(np.abs(sbp - ref_sbp)) < 1.5
    assert np.abs(sbp[-1] - ref_sbp[-1]) < 0.05
    assert np.abs(dbp[-1] - ref_dbp[-1]) < 0.05


def test_it_rejects_ages_outside_the_adult_range():
    with pytest.raises(ValueError, match="age"):
        bp.track_from_reading(12.0, 110.0)


def test_the_curves_are_held_at_their_end_value_outside_the_ages_they_were_published_for():
    hi = bp.PUBLISHED_AGE_RANGE[1]
    ic = float(bp.dbp_track_from_reading(75.0, 80.0))
    assert float(bp.dbp_on_track(95.0, ic)) == pytest.approx(float(bp.dbp_on_track(hi, ic)))
    assert float(bp.dbp_slope(90.0, 80.0)) == 0.0
    assert float(bp.sbp_slope(20.0, 120.0)) == 0.0
    # extrapolated, the DBP track was singular near age 101.5
    assert np.isfinite(bp.dbp_track_from_reading(101.5, 80.0))
    assert float(bp.rhs(hi + 5.0, np.zeros(2), 130.0, 85.0)[1]) == 0.0


def test_validate_age_accepts_every_adult_age_the_curves_clamp():
    bp.validate_age(np.array([18.0, 95.0, 110.0]))
    assert bp.curve_age(95.0) == pytest.approx(bp.PUBLISHED_AGE_RANGE[1])
