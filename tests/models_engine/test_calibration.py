"""Calibration fits a patient's own parameters robustly and says when it leans on the prior."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from models_engine import calibration
from models_engine.calibration import calibrate, calibrate_batch
from models_engine.forecast import forecast
from models_engine.history import Series, TreatmentExposure
from tests.fixtures.twin.factories import make_history


def _with(history, variable, t, y):
    obs = dict(history.observations)
    obs[variable] = Series(t=np.asarray(t, float), y=np.asarray(y, float))
    return type(history)(**{**history.__dict__, "observations": obs})


def test_it_recovers_a_patients_level_and_slope_from_many_readings():
    h = make_history(sbp=(150.0, 1.5), n=40, span_days=3650, seed=3)
    fit = calibrate(h).fits["sbp"]
    level, slope = fit.mean[:2]
    sd = np.sqrt(np.diag(fit.cov))[:2]
    assert abs(level - 150.0) < 3 * sd[0] and sd[0] < 6.0
    assert abs(slope - 1.5) < 3 * sd[1]


def test_it_is_robust_to_a_single_gross_outlier():
    h = make_history(sbp=(140.0, 0.0), n=12, noise=0.5, seed=1)
    t, y = h.observations["sbp"].t, h.observations["sbp"].y.copy()
    clean = calibrate(h).fits["sbp"].mean[0]
    y[-2] += 90.0
    dirty = calibrate(_with(h, "sbp", t, y)).fits["sbp"].mean[0]
    ols_shift = np.polyval(np.polyfit(t, y, 1), 0.0) - np.polyval(
        np.polyfit(t, h.observations["sbp"].y, 1), 0.0
    )
    assert abs(dirty - clean) < 0.5 * abs(ols_shift)


def test_a_patient_with_two_readings_falls_back_to_the_prior_and_says_so():
    h = make_history(n=2, span_days=200)
    cal = calibrate(h)
    assert cal.fallback
    assert any(note.startswith("sbp: 2 reading") for note in cal.notes)
    # the slope is barely informed by two readings half a year apart
    assert cal.fits["sbp"].shrinkage[1] > 0.8


def test_a_single_high_reading_raises_the_fit_the_higher_it_is():
    # one reading is no majority to call an outlier: against the population prior it is evidence,
    # so a higher reading may never give a lower fitted level (a Student-t weight would discard it)
    base = make_history(n=1, span_days=0.0)
    levels = []
    for value in (160.0, 190.0, 220.0, 250.0):
        h = _with(base, "sbp", [-30.0], [value])
        levels.append(calibrate(h).fits["sbp"].mean[0])
    assert np.all(np.diff(levels) > 0)
    prior_level = calibration.prior_for(base, "sbp", 0.0)[0][0]
    assert levels[-1] > prior_level + 0.5 * (250.0 - prior_level)


def test_a_patient_calibrated_alone_keeps_the_documented_noise_of_two_repeated_readings():
    # a batch of one has no population to learn the noise from; counting the same two readings in
    # the batch estimate and again in the patient's own would make two repeats look noise-free
    h = _with(make_history(n=2), "sbp", [-400.0, -30.0], [150.0, 150.0])
    fit = calibrate(h).fits["sbp"]
    assert fit.noise_scale == pytest.approx(1.0)
    assert fit.walk_var == pytest.approx(calibration.priors()[("sbp", "rw_var")])


def test_a_batch_of_a_few_patients_keeps_the_documented_hyperparameters():
    few = _walk_plus_noise(calibration.MIN_EB_PATIENTS - 1, q=36.0, sigma=5.0, seed=4)
    assert calibration.estimate_noise_and_walk(
        calibration.consecutive_differences(few), walk_var_prior=9.0, dof=4.0
    ) == (1.0, 9.0)
    enough = _walk_plus_noise(calibration.MIN_EB_PATIENTS, q=36.0, sigma=5.0, seed=4)
    k, q = calibration.estimate_noise_and_walk(
        calibration.consecutive_differences(enough), walk_var_prior=9.0, dof=4.0
    )
    assert k < 1.0 and q > 9.0


def test_it_handles_irregular_sparse_readings_and_missing_variables():
    h = make_history(n=5)
    t = np.array([-3000.0, -2990.0, -400.0, -35.0, -2.0])
    h = _with(h, "sbp", t, [150, 149, 155, 151, 158])
    obs = {k: v for k, v in h.observations.items() if k != "ldl"}
    h = type(h)(**{**h.__dict__, "observations": obs})
    cal = calibrate(h)
    assert np.isfinite(cal.fits["sbp"].mean).all()
    assert cal.fits["ldl"].n_obs == 0 and cal.fits["ldl"].fallback
    assert np.allclose(cal.fits["ldl"].mean, cal.fits["ldl"].prior_mean)


def test_it_attributes_a_step_at_a_treatment_start_to_the_treatment():
    t = np.linspace(-3650, 0, 30)
    rng = np.random.default_rng(5)
    sbp = 165.0 + rng.normal(0, 4.0, t.size)
    sbp[t >= -1800] -= 9.1 + 0.1 * (165 - 154) + 2.0  # a slightly better than average responder
    h = make_history(treatments=(TreatmentExposure("ace_inhibitor", -1800.0),))
    h = _with(h, "sbp", t, sbp)
    fit = calibrate(h).fits["sbp"]
    untreated_level, _, response, _ = fit.mean
    assert untreated_level == pytest.approx(165.0, abs=4.0)
    assert response > 1.0


def test_calibrating_a_batch_matches_calibrating_each_patient_with_fixed_hyperparameters():
    hs = [make_history(patient_id=f"p{i}", seed=i, n=4 + 3 * i) for i in range(3)]
    batch = calibrate_batch(hs, empirical_bayes=False)
    for h, b in zip(hs, batch, strict=True):
        single = calibrate_batch([h], empirical_bayes=False)[0]
        for v in calibration.FIT_VARIABLES:
            assert np.allclose(single.fits[v].mean, b.fits[v].mean, rtol=1e-4, atol=1e-4)
            assert np.allclose(single.fits[v].cov, b.fits[v].cov, rtol=1e-3, atol=1e-6)


def test_it_ignores_readings_after_the_cut_off():
    h = make_history(n=10)
    cut = calibrate(h, until=-1000.0)
    assert cut.fits["sbp"].t_last <= -1000.0
    assert cut.fits["sbp"].n_obs < 10


def test_every_prior_names_its_source_and_matches_the_stated_noise_floors():
    with open(calibration.PRIORS_PATH, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["source"].strip() for r in rows)
    p = calibration.priors()
    assert p[("sbp", "noise_sd")] == 10.0
    assert 0.029 <= p[("hba1c", "noise_cv")] <= 0.05


def test_it_fits_the_glucose_offset_from_paired_readings():
    h = make_history(hba1c=(7.0, 0.0), noise=0.2, n=12)
    t = h.observations["hba1c"].t
    # fasting glucose sits 30 mg/dL below the ADAG mean glucose of 7 % (154.2 mg/dL)
    h = _with(h, "glucose", t, np.full(t.size, 154.2 - 30.0))
    offset = calibrate(h).fits["hba1c"].mean[3]
    assert offset == pytest.approx(30.0, abs=5.0)


def test_the_robust_solver_rejects_non_positive_noise():
    x = np.ones((1, 2, 1))
    with pytest.raises(ValueError, match="sd"):
        calibration.solve_batch(
            x,
            np.zeros((1, 2)),
            np.zeros((1, 2)),
            np.ones((1, 2)),
            np.zeros((1, 1)),
            np.ones((1, 1)),
            dof=4.0,
            prior_dof=6.0,
        )


def test_a_patient_without_readings_is_calibrated_from_the_priors_alone():
    import datetime as dt

    from models_engine.history import PatientHistory

    h = PatientHistory(
        patient_id="empty",
        sex="female",
        birth_date=dt.date(1960, 1, 1),
        reference_date=dt.date(2024, 1, 1),
        treatments=(TreatmentExposure("thiazide", -100.0, dose=0.0),),
    )
    cal = calibrate(h)
    assert cal.fallback and len(cal.notes) == len(calibration.FIT_VARIABLES)
    for fit in cal.fits.values():
        assert np.allclose(fit.mean, fit.prior_mean)
        assert np.allclose(fit.shrinkage, 1.0)


def test_it_reports_misfit_when_readings_change_faster_than_the_model_allows():
    h = make_history(n=8, span_days=540)
    t = h.observations["hba1c"].t
    steep = _with(h, "hba1c", t, np.linspace(6.9, 12.7, t.size))
    notes = calibrate(steep).notes
    assert any(n.startswith("hba1c: readings scatter") for n in notes)
    assert not any(n.startswith("hba1c: readings scatter") for n in calibrate(h).notes)


def test_it_absorbs_a_lasting_jump_in_the_level_instead_of_bending_the_slope():
    h = make_history(n=12, span_days=3650, noise=0.0)
    t = h.observations["hba1c"].t
    jumped = _with(h, "hba1c", t, np.where(t < -2500, 7.0, 5.6) + 0.02 * np.sin(t))
    fit = calibrate(jumped).fits["hba1c"]
    assert fit.mean[0] == pytest.approx(5.6, abs=0.1)
    assert abs(fit.mean[1]) < 0.02  # a Gaussian walk bends it to about -0.05 %/yr


def _walk_plus_noise(
    n_pat: int, q: float, sigma: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_pat):
        t = np.sort(rng.uniform(-3650.0, 0.0, 12))
        steps = np.diff(t, prepend=t[0]) / calibration.DAYS_PER_YEAR
        level = np.cumsum(rng.normal(0.0, np.sqrt(q * steps)))
        out.append((t, level + rng.normal(0.0, sigma, t.size), np.full(t.size, 10.0)))
    return out


def test_it_recovers_the_noise_and_walk_of_a_simulated_batch_by_empirical_bayes():
    # truth: noise half the stated SD of 10, walk 4x the prior of 9 per year
    pairs = _walk_plus_noise(400, q=36.0, sigma=5.0, seed=1)
    k, q = calibration.estimate_noise_and_walk(
        calibration.consecutive_differences(pairs), walk_var_prior=9.0, dof=1e6
    )
    assert k == pytest.approx(0.5, rel=0.1)
    assert q == pytest.approx(36.0, rel=0.3)


def test_it_keeps_the_documented_hyperparameters_when_the_batch_has_no_pairs():
    single = [(np.array([0.0]), np.array([1.0]), np.array([1.0]))]
    assert calibration.estimate_noise_and_walk(
        calibration.consecutive_differences(single), walk_var_prior=9.0, dof=4.0
    ) == (1.0, 9.0)


def test_it_gives_repeated_readings_less_noise_than_scattered_ones():
    pairs = _walk_plus_noise(50, q=9.0, sigma=10.0, seed=2)
    pairs[0] = (pairs[0][0], np.full(12, 130.0), pairs[0][2])
    pairs[1] = (pairs[1][0], pairs[1][1] * 3.0, pairs[1][2])
    k, q = calibration.patient_noise_and_walk(
        calibration.consecutive_differences(pairs), k_batch=1.0, walk_var=9.0, dof=4.0
    )
    assert k[0] < 0.5 < 1.5 < k[1]
    assert q[0] < 9.0 <= q[1]


def test_a_patient_without_pairs_keeps_the_batch_noise_and_walk():
    pairs = _walk_plus_noise(20, q=9.0, sigma=10.0, seed=3)
    pairs.append((np.array([0.0]), np.array([120.0]), np.array([10.0])))
    k, q = calibration.patient_noise_and_walk(
        calibration.consecutive_differences(pairs), k_batch=0.8, walk_var=5.0, dof=4.0
    )
    assert (k[-1], q[-1]) == pytest.approx((0.8, 5.0))


def test_a_flat_record_forecasts_flat_despite_the_population_slope():
    # eight identical annual HbA1c readings of a patient with diabetes: the patient's own record,
    # not the +0.12 %/yr population prior (+0.6 % in five years), should carry the five-year
    # forecast; the assay's imprecision (the noise floor) leaves the prior a few hundredths
    flat = make_history(
        patient_id="flat", n=8, span_days=7 * 365.25, hba1c=(7.1, 0.0), noise=0.0, diabetes=True
    )
    others = [make_history(patient_id=f"p{i}", hba1c=(6.5, 0.1), seed=i) for i in range(30)]
    cal = calibrate_batch([flat, *others])[0]
    five_years = forecast(cal, horizon_years=5.0, n_samples=1000, with_risk=False)
    assert five_years.variables["hba1c"].median[-1] == pytest.approx(7.1, abs=0.1)


def test_it_rejects_a_non_positive_walk_variance():
    with pytest.raises(ValueError, match="walk_var_prior"):
        calibration.estimate_noise_and_walk(
            calibration.consecutive_differences([]), walk_var_prior=0.0, dof=4.0
        )


def test_solve_blocks_cover_every_patient_once_within_the_budget():
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 60, 300)
    mask = (np.arange(60)[None, :] < lengths[:, None]).astype(float)
    blocks = calibration.solve_blocks(mask, cells=5000)
    seen = np.concatenate([idx for idx, _ in blocks])
    assert sorted(seen.tolist()) == list(range(300))
    for idx, width in blocks:
        assert width == max(1, int(lengths[idx].max()))
        assert idx.size == 1 or idx.size * width**2 <= 5000
        narrowest = max(1, int(lengths[idx].min()))
        if narrowest < calibration.SPD_LOOP_ROWS:
            # short records share the stacked solve and are never padded into the Cholesky loop
            assert width < calibration.SPD_LOOP_ROWS
        else:
            assert width <= calibration.SOLVE_BLOCK_SPREAD * narrowest


def test_solve_blocks_do_not_pad_short_records_to_the_longest():
    # a batch of 24- to 120-row records once went into one block padded to 120 rows
    lengths = np.arange(24, 121)
    mask = (np.arange(120)[None, :] < lengths[:, None]).astype(float)
    blocks = calibration.solve_blocks(mask)
    padded = sum(idx.size * width**3 for idx, width in blocks)
    assert padded < 2.0 * int((lengths**3).sum())
    assert sorted(np.concatenate([idx for idx, _ in blocks]).tolist()) == list(range(lengths.size))


@pytest.mark.parametrize("rows", [5, calibration.SPD_LOOP_ROWS, 90])
def test_spd_solve_matches_a_general_solve_on_both_paths(rows):
    rng = np.random.default_rng(rows)
    u = np.sort(rng.uniform(0.0, 5.0, (7, rows)), axis=1)
    a = (np.minimum(u[:, :, None], u[:, None, :]) + 0.5 * np.eye(rows)).astype(np.float32)
    b = rng.normal(size=(7, rows, 5)).astype(np.float32)
    expected = np.linalg.solve(a.astype(np.float64), b.astype(np.float64))
    got = calibration.spd_solve(a.copy(), b)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-3 * np.abs(expected).max()


def test_spd_solve_falls_back_when_a_matrix_is_not_positive_definite():
    a = np.stack([np.eye(30), -np.eye(30)]).astype(np.float32)
    a[1, 0, 1] = a[1, 1, 0] = 0.25
    b = np.ones((2, 30, 2), dtype=np.float32)
    got = calibration.spd_solve(a.copy(), b)
    assert np.allclose(got, np.linalg.solve(a.astype(np.float64), b.astype(np.float64)), atol=1e-5)


def test_walk_level_equals_the_kernel_product():
    rng = np.random.default_rng(9)
    walked = np.cumsum(rng.exponential(1.0, (4, 12)), axis=1)
    walked[:, 5] = walked[:, 4]  # a tie
    alpha = rng.normal(size=(4, 12))
    kernel = np.minimum(walked[:, :, None], walked[:, None, :])
    expected = np.einsum("pij,pj->pi", kernel, alpha)
    assert np.allclose(calibration._walk_level(walked, alpha), expected, rtol=1e-12, atol=1e-12)


def test_calibration_in_small_blocks_matches_one_stack(monkeypatch):
    histories = [
        make_history(patient_id=f"p{i}", n=n, seed=i)
        for i, n in enumerate([2, 3, 5, 8, 13, 21, 34, 4, 9, 16, 25, 6])
    ]
    whole = calibrate_batch(histories)
    monkeypatch.setattr(calibration, "SOLVE_BLOCK_CELLS", 300)
    assert len(calibration.solve_blocks(np.ones((12, 34)))) > 1
    blocked = calibrate_batch(histories)
    for a, b in zip(whole, blocked, strict=True):
        for var, fit in a.fits.items():
            other = b.fits[var]
            assert np.abs(fit.mean - other.mean) / fit.prior_sd == pytest.approx(0.0, abs=1e-4)
            assert np.sqrt(np.diag(other.cov)) == pytest.approx(np.sqrt(np.diag(fit.cov)), rel=1e-3)


def test_a_home_monitoring_record_is_averaged_into_visits_and_says_so():
    # four home readings a day for ten years: the fit sees visits, not 14,600 rows
    rng = np.random.default_rng(6)
    t = np.sort(rng.uniform(-3650.0, 0.0, 14_600))
    y = 150.0 + 1.0 * t / 365.25 + rng.normal(0.0, 10.0, t.size)
    home = _with(make_history(patient_id="home", n=12), "sbp", t, y)
    others = [make_history(patient_id=f"p{i}", n=12, seed=i) for i in range(20)]
    cal = calibrate_batch([home, *others])[0]
    fit = cal.fits["sbp"]
    assert fit.n_obs <= calibration.MAX_FIT_READINGS
    assert any(n.startswith("sbp: readings averaged into") for n in cal.notes)
    assert fit.mean[0] == pytest.approx(150.0, abs=3.0)
    assert fit.mean[1] == pytest.approx(1.0, abs=0.5)


def test_a_record_within_the_limit_is_fitted_reading_by_reading():
    t = np.linspace(-3650.0, 0.0, calibration.MAX_FIT_READINGS)
    y = np.arange(t.size, dtype=float)
    assert calibration.visit_window(t) == 0.0
    same = calibration.as_visits(t, y)
    assert same[0] is t and same[1] is y
    more = np.linspace(-3650.0, 0.0, calibration.MAX_FIT_READINGS + 1)
    t2, y2 = calibration.as_visits(more, np.ones(more.size))
    assert t2.size <= calibration.MAX_FIT_READINGS and np.all(y2 == 1.0)
    assert t2.min() >= more.min() and t2.max() <= more.max()


def test_every_noise_floor_is_below_the_documented_noise():
    for var in calibration.FIT_VARIABLES:
        assert 0.0 < calibration.noise_floor(var) < 1.0, var


def test_repeated_values_still_forecast_a_new_reading_with_the_measurements_imprecision():
    # twelve identical office SBPs (a record copied forward): the next reading is not certain,
    # and an ordinary 5 mmHg difference is no drift
    from models_engine.twin import Twin

    t = np.linspace(-3650.0, -30.0, 12)
    flat = _with(make_history(patient_id="flat", n=12), "sbp", t, np.full(12, 150.0))
    others = [make_history(patient_id=f"p{i}", n=12, seed=i) for i in range(20)]
    cal = calibrate_batch([flat, *others])[0]
    assert cal.fits["sbp"].noise_scale >= calibration.noise_floor("sbp")
    twin = Twin(calibration=cal, n_samples=400)
    fc = twin.forecast(horizon_years=1.0)
    sbp = fc.variables["sbp"]
    floor_sd = calibration.priors()[("sbp", "noise_floor")]
    assert np.all(sbp.hi80 - sbp.lo80 >= 0.9 * 2 * 1.2816 * floor_sd)
    assert not twin.drift("sbp", 180.0, 155.0, within=fc).outside95


def test_a_patient_whose_dbp_does_not_fall_with_age_is_not_forecast_falling():
    # patients in their late 80s with a steady DBP of 85: the population curve (published up to
    # age 80) may not pull their forecast down
    batch = [
        make_history(
            patient_id=f"old{i}", age=88.0, n=12, span_days=8 * 365.25, dbp=(85.0, 0.0), seed=i
        )
        for i in range(12)
    ]
    cal = calibrate_batch(batch)[0]
    five_years = forecast(cal, horizon_years=5.0, n_samples=1000, with_risk=False)
    assert five_years.variables["dbp"].median[-1] > 82.0


def test_an_hba1c_below_4_percent_is_left_out_of_the_fit_and_the_notes_say_why():
    h = make_history(n=10, hba1c=(6.0, 0.0), noise=0.2, seed=5)
    t, y = h.observations["hba1c"].t, h.observations["hba1c"].y.copy()
    y[-1] = 3.0
    cal = calibrate(_with(h, "hba1c", t, y))
    fit = cal.fits["hba1c"]
    assert fit.n_obs == 9
    assert fit.mean[0] == pytest.approx(6.0, abs=0.3)
    assert any("hba1c: 1 reading(s) outside the plausible range 4-18 %" in n for n in cal.notes)


def test_every_plausible_range_names_its_source():
    with calibration.RANGES_PATH.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"sbp", "dbp", "hba1c", "ldl", "weight", "egfr"} <= {r["variable"] for r in rows}
    assert all(r["source"].strip() for r in rows)


def test_a_single_large_pair_does_not_set_a_patients_noise():
    # a steady series then one step at the newest reading: without that one pair the patient
    # looks like the batch, so the step does not make every earlier reading look noisy
    batch = _walk_plus_noise(20, q=1.0, sigma=2.0, seed=4)
    y = np.r_[120.0 + np.array([1.5, -2.0, 0.8, -1.2, 2.1, -0.6, 1.0]), 160.0]
    batch.append((np.arange(8) * 180.0, y, np.full(8, 10.0)))
    diffs = calibration.consecutive_differences(batch)
    k_plain, _ = calibration.patient_noise_and_walk(diffs, k_batch=0.2, walk_var=1.0, dof=4.0)
    k, _ = calibration.robust_patient_noise_and_walk(diffs, k_batch=0.2, walk_var=1.0, dof=4.0)
    assert k_plain[-1] > 0.35
    assert k[-1] < 0.3


def test_the_robust_estimate_is_the_nearer_of_with_and_without_the_largest_pair():
    # its definition, computed the long way: two full grid searches and the nearer to the batch
    batch = _walk_plus_noise(40, q=1.0, sigma=2.0, seed=11)
    rng = np.random.default_rng(12)
    for _t, y, _sd in batch[::3]:
        y[rng.integers(y.size)] += 25.0  # one odd reading in some records
    diffs = calibration.consecutive_differences(batch)
    kw = {"k_batch": 0.2, "walk_var": 1.0, "dof": 4.0}
    k_all, q_all = calibration.patient_noise_and_walk(diffs, **kw)
    k_cut, q_cut = calibration.patient_noise_and_walk(
        calibration.without_largest_pair(diffs, k_batch=0.2, walk_var=1.0), **kw
    )
    nearer = np.abs(np.log(k_cut / 0.2)) < np.abs(np.log(k_all / 0.2))
    k, q = calibration.robust_patient_noise_and_walk(diffs, **kw)
    assert nearer.any() and not nearer.all()
    assert np.allclose(k, np.where(nearer, k_cut, k_all), rtol=1e-12)
    assert np.allclose(q, np.where(nearer, q_cut, q_all), rtol=1e-12)


def test_the_batch_response_is_pooled_from_patients_whose_readings_inform_it():
    rng = np.random.default_rng(6)
    n = 40
    prior_sd = np.full(n, 0.3)
    # each patient's readings alone say about half the catalogue effect (variance 0.01)
    own = rng.normal(0.5, 0.05, n)
    post_var = 1.0 / (1.0 / 0.01 + 1.0 / 0.09)
    post_mean = post_var * (own / 0.01 + 1.0 / 0.09)
    pooled = calibration.pooled_response(post_mean, np.full(n, post_var), np.ones(n), prior_sd)
    assert pooled is not None
    assert pooled[0] == pytest.approx(0.5, abs=0.1)
    # patients whose readings say nothing (no reading after a start) leave the catalogue prior
    assert calibration.pooled_response(np.ones(n), np.full(n, 0.09), np.ones(n), prior_sd) is None


def test_a_few_informed_patients_move_the_batch_response_mean_but_not_its_spread():
    n = 40
    prior_sd = np.full(n, 0.3)
    # five patients whose readings say the drugs did nothing; the rest say nothing at all
    post_var = np.full(n, 0.09)
    post_var[:5] = 1.0 / (1.0 / 0.04 + 1.0 / 0.09)
    post_mean = np.ones(n)
    post_mean[:5] = post_var[:5] * (0.0 / 0.04 + 1.0 / 0.09)
    pooled = calibration.pooled_response(post_mean, post_var, np.ones(n), prior_sd)
    assert pooled is not None
    assert pooled[0] < 0.6
    assert pooled[1] == pytest.approx(0.3)
    few = post_var.copy()
    few[calibration.MIN_RESPONSE_PATIENTS - 1 :] = 0.09
    assert calibration.pooled_response(post_mean, few, np.ones(n), prior_sd) is None


def test_a_course_without_readings_after_its_start_widens_the_bands():
    start_now = (TreatmentExposure("ace_inhibitor", start=-1.0),)
    plain = make_history(n=10, sbp=(160.0, 0.0), seed=8)
    treated = type(plain)(**{**plain.__dict__, "treatments": start_now})
    widths = []
    for h in (plain, treated):
        fc = forecast(calibrate(h), horizon_years=1.0, n_samples=2000, with_risk=False)
        widths.append(fc.variables["sbp"].hi80[-1] - fc.variables["sbp"].lo80[-1])
    assert widths[1] > widths[0]


def test_a_batch_whose_readings_ignore_drug_starts_forecasts_a_smaller_effect_for_a_new_course():
    # four patients start an ACE inhibitor mid-record and their readings do not move (the
    # factory's readings ignore treatments), as in a simulator without drug effects
    ignored = [
        make_history(
            patient_id=f"i{i}",
            n=16,
            sbp=(160.0, 0.0),
            seed=20 + i,
            treatments=(TreatmentExposure("ace_inhibitor", start=-1500.0),),
        )
        for i in range(4)
    ]
    new_course = make_history(
        patient_id="new",
        n=10,
        sbp=(160.0, 0.0),
        seed=9,
        treatments=(TreatmentExposure("ace_inhibitor", start=-1.0),),
    )
    alone = calibrate_batch([new_course])[0]
    pooled = calibrate_batch([*ignored, new_course])[-1]
    assert alone.fits["sbp"].mean[2] == pytest.approx(1.0, abs=0.05)
    assert pooled.fits["sbp"].mean[2] < 0.8


def _class_evidence(responses, n_each=8, var=0.01):
    """Each patient's response as their readings alone say it: ``responses`` per class block."""
    est = np.concatenate([np.full(n_each, r) for r in responses])
    return est, np.full(est.size, var)


def test_one_class_alone_or_classes_always_taken_together_keep_the_batch_mean():
    est, var = _class_evidence([0.4, 0.4])
    alone = calibration.pooled_class_scales(
        est, var, np.ones((est.size, 1)), ["statin"], mean=0.5, spread=0.1, class_sd=0.1
    )
    assert alone == {"statin": pytest.approx(1.0)}
    together = calibration.pooled_class_scales(
        est,
        var,
        np.full((est.size, 2), 0.5),
        ["ccb", "thiazide"],
        mean=0.5,
        spread=0.1,
        class_sd=0.1,
    )
    assert together["ccb"] == pytest.approx(1.0) and together["thiazide"] == pytest.approx(1.0)


def test_classes_taken_apart_move_apart_as_far_as_their_patients_say_shrunk_to_the_batch():
    # eight patients on a CCB alone respond at 1.3x the catalogue, eight on a thiazide at 0.7x
    est, var = _class_evidence([1.3, 0.7])
    shares = np.zeros((est.size, 2))
    shares[:8, 0] = 1.0
    shares[8:, 1] = 1.0
    scales = calibration.pooled_class_scales(
        est, var, shares, ["ccb", "thiazide"], mean=1.0, spread=0.1, class_sd=0.1
    )
    assert 1.0 < scales["ccb"] < 1.3
    assert 0.7 < scales["thiazide"] < 1.0
    # a wider class prior lets the data speak more
    wide = calibration.pooled_class_scales(
        est, var, shares, ["ccb", "thiazide"], mean=1.0, spread=0.1, class_sd=1.0
    )
    assert wide["ccb"] > scales["ccb"] and wide["thiazide"] < scales["thiazide"]
    assert wide["ccb"] == pytest.approx(1.3, abs=0.02)


def test_a_class_few_patients_inform_keeps_the_batch_mean_and_none_goes_below_zero():
    est, var = _class_evidence([1.0, -3.0], n_each=calibration.MIN_RESPONSE_PATIENTS)
    shares = np.zeros((est.size, 3))
    shares[: calibration.MIN_RESPONSE_PATIENTS, 0] = 1.0
    shares[calibration.MIN_RESPONSE_PATIENTS :, 1] = 1.0
    shares[0] = [0.5, 0.0, 0.5]  # one patient takes the third class, with the first
    scales = calibration.pooled_class_scales(
        est, var, shares, ["a", "b", "c"], mean=1.0, spread=0.1, class_sd=10.0
    )
    assert scales["c"] == 1.0
    assert scales["b"] == 0.0


def _stepped(i, treatment, response, start=-1500.0):
    """An untreated SBP of 165 whose readings fall by ``response`` x the catalogue at ``start``."""
    t = np.linspace(-3650.0, 0.0, 24)
    rng = np.random.default_rng(100 + i)
    sbp = 165.0 + rng.normal(0.0, 3.0, t.size)
    sbp[t >= start + 60.0] -= response * (9.1 + 0.1 * (165.0 - 154.0))
    h = make_history(
        patient_id=f"{treatment}{i}", treatments=(TreatmentExposure(treatment, start),)
    )
    return _with(h, "sbp", t, sbp)


def test_a_batch_whose_ccb_patients_respond_more_than_its_thiazide_patients_forecasts_so():
    batch = [_stepped(i, "ccb", 1.6) for i in range(8)]
    batch += [_stepped(i, "thiazide", 0.4) for i in range(8)]
    flat = make_history(patient_id="new", n=12, sbp=(165.0, 0.0), seed=3)
    starts = [
        type(flat)(
            **{**flat.__dict__, "patient_id": c, "treatments": (TreatmentExposure(c, -1.0),)}
        )
        for c in ("ccb", "thiazide")
    ]
    cals = calibrate_batch([*batch, *starts])
    scale = cals[-1].fits["sbp"].class_scale
    assert scale["ccb"] > 1.05 > 0.95 > scale["thiazide"]
    medians = [
        forecast(c, horizon_years=0.5, n_samples=400, seed=0, with_risk=False)
        .variables["sbp"]
        .median[-1]
        for c in cals[-2:]
    ]
    # the same readings, the same prior response: the CCB's course is forecast to lower more
    assert medians[0] < medians[1] - 1.0
