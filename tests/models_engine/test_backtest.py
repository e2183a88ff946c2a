"""The backtest scores the twin and two naive baselines on held-out readings."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from models_engine.backtest import (
    BACKTEST_VARIABLES,
    PatientScore,
    coverage_interval,
    gain_interval,
    holdout_split,
    known_at,
    run_backtest,
    trend_prediction,
)
from models_engine.history import TreatmentExposure
from tests.fixtures.twin.factories import make_history

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twin"


def test_the_trend_baseline_extrapolates_a_straight_line_exactly():
    t = np.array([-300.0, -200.0, -100.0])
    y = 2.0 + 0.5 * t
    assert np.allclose(trend_prediction(t, y, np.array([100.0])), [52.0])


def test_the_trend_baseline_carries_forward_when_the_span_is_too_short():
    assert (
        trend_prediction(np.array([-10.0, -5.0]), np.array([1.0, 3.0]), np.array([50.0]))[0] == 3.0
    )


def test_the_holdout_leaves_out_implausible_readings_on_both_sides():
    h = make_history(n=10, span_days=900)
    s = h.observations["hba1c"]
    y = s.y.copy()
    y[[3, 9]] = 3.0  # below the plausible 4 %: not a measure of glycaemia
    h = dataclasses.replace(
        h, observations={**h.observations, "hba1c": dataclasses.replace(s, y=y)}
    )
    t_tr, y_tr, t_te, y_te = holdout_split(h, -300.0)["hba1c"]
    assert (y_tr >= 4.0).all() and (y_te >= 4.0).all()
    assert t_tr.size + t_te.size == 8


def test_known_at_forgets_later_starts_and_stops():
    h = make_history(
        treatments=(
            TreatmentExposure("thiazide", -2000.0, -100.0),
            TreatmentExposure("statin", -50.0),
        )
    )
    k = known_at(h, -500.0)
    assert [e.treatment for e in k.treatments] == ["thiazide"]
    assert k.treatments[0].stop is None


def test_it_beats_carry_forward_on_noisy_readings_and_reports_every_field():
    hs = [make_history(patient_id=str(i), seed=i, n=12, span_days=1460) for i in range(100)]
    report = run_backtest(hs, holdout_days=365, n_samples=200)
    json.dumps(report)
    assert set(report) == set(BACKTEST_VARIABLES)
    fields = {
        "n",
        "mae_twin",
        "mae_locf",
        "mae_trend",
        "rmse_twin",
        "rmse_locf",
        "rmse_trend",
        "coverage80",
        "coverage95",
        "coverage80_low",
        "coverage80_high",
        "gain_low",
        "gain_high",
        "trend_gain_low",
        "trend_gain_high",
        "patient_mae_twin",
        "patient_mae_locf",
        "patient_mae_trend",
        "patient_coverage80",
        "largest_patient_share",
    }
    for row in report.values():
        assert fields <= set(row)
    sbp = report["sbp"]
    assert sbp["n"] >= 200
    assert sbp["mae_twin"] < sbp["mae_locf"]
    assert sbp["gain_low"] < 1 - sbp["mae_twin"] / sbp["mae_locf"] < sbp["gain_high"]
    assert sbp["trend_gain_low"] < 1 - sbp["mae_twin"] / sbp["mae_trend"] < sbp["trend_gain_high"]
    assert 0.0 <= sbp["coverage80"] <= sbp["coverage95"] <= 1.0
    assert sbp["coverage80_low"] <= sbp["coverage80"] <= sbp["coverage80_high"]


def test_the_patient_weighted_figures_count_each_patient_once():
    # One patient with many held-out readings and many with one each: the pooled MAE is mostly
    # the first patient's, the patient-weighted one the mean of the patients' own MAEs.
    hs = [make_history(patient_id="dense", seed=0, n=400, span_days=1460)]
    hs += [make_history(patient_id=str(i), seed=i, n=8, span_days=1460) for i in range(1, 30)]
    scores: list[PatientScore] = []
    report = run_backtest(hs, holdout_days=365, n_samples=100, patient_scores=scores)
    for var in ("sbp", "weight"):
        own = [s for s in scores if s.variable == var]
        row = report[var]
        assert row["patients"] == len(own)
        for model in ("twin", "locf", "trend"):
            mean = np.mean([getattr(s, f"mae_{model}") for s in own])
            assert row[f"patient_mae_{model}"] == pytest.approx(mean)
            pooled = sum(s.n * getattr(s, f"mae_{model}") for s in own) / row["n"]
            assert row[f"mae_{model}"] == pytest.approx(pooled)
        assert row["patient_coverage80"] == pytest.approx(np.mean([s.coverage80 for s in own]))
        dense = next(s for s in own if s.patient_id == "dense")
        assert row["largest_patient_share"] == pytest.approx(dense.n / row["n"])
        assert row["largest_patient_share"] > 0.5


def test_it_rejects_an_absurd_holdout():
    with pytest.raises(ValueError, match="holdout"):
        run_backtest([make_history()], holdout_days=0)


def test_it_runs_on_real_synthea_bundles():
    extract = pytest.importorskip("patients.fhir.extract")
    bundles = sorted(FIXTURES.glob("*.json"))
    assert bundles, "the Synthea fixtures are missing"
    hs = [extract.history_from_bundle(json.loads(p.read_text(encoding="utf-8"))) for p in bundles]
    report = run_backtest(hs, holdout_days=365, n_samples=200)
    assert report["sbp"]["n"] >= len(bundles)
    assert all(report["sbp"][k] is not None for k in ("mae_twin", "mae_locf", "coverage80"))


def test_the_gain_interval_is_exact_when_every_patient_gains_the_same():
    locf = [np.array([2.0, -4.0]), np.array([1.0]), np.array([-3.0, 3.0, 1.0])]
    twin = [0.5 * e for e in locf]
    assert gain_interval(twin, locf) == pytest.approx((0.5, 0.5))


def test_the_gain_interval_widens_when_patients_disagree():
    rng = np.random.default_rng(4)
    locf = [rng.normal(size=3) for _ in range(20)]
    twin = [e * (0.2 if i % 2 else 1.6) for i, e in enumerate(locf)]
    lo, hi = gain_interval(twin, locf)
    assert lo < 0.1 < hi and hi - lo > 0.3


def test_the_coverage_interval_keeps_a_patients_readings_together():
    # 100 readings of one patient, all inside, and 20 patients with one reading each, half
    # inside: pooled coverage 110/120, but whether that one patient is drawn decides it.
    inside = [np.ones(100)] + [np.array([float(i % 2)]) for i in range(20)]
    lo, hi = coverage_interval(inside)
    assert lo < 0.5 and hi > 0.95
    # the same readings as if independent patients give a narrow interval around 110/120
    lo_ind, hi_ind = coverage_interval([np.array([x]) for x in np.concatenate(inside)])
    assert lo_ind < 110 / 120 < hi_ind and hi_ind - lo_ind < 0.15
    assert coverage_interval([np.ones(3), np.ones(2)]) == pytest.approx((1.0, 1.0))
    assert all(math.isnan(x) for x in coverage_interval([]))


def test_a_baseline_error_of_rounding_residue_gives_no_ratio():
    # one patient's readings lie exactly on a line, so the trend's error there is rounding
    # residue: resamples holding only that patient have no gain, rather than one of -10^12
    twin = [np.array([0.1]), np.array([0.5])]
    trend = [np.array([5e-14]), np.array([1.0])]
    lo, hi = gain_interval(twin, trend)
    assert 0.39 <= lo <= hi <= 0.51
    assert all(math.isnan(x) for x in gain_interval([np.array([0.3])], [np.array([0.0])]))
