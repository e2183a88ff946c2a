"""The treatment catalogue reproduces the trial effects it cites, alone and through the twin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from models_engine import treatments
from models_engine.calibration import calibrate
from models_engine.forecast import Draws, exposures_under, simulate, time_grid
from models_engine.history import TREATMENT_CLASSES, TreatmentExposure
from models_engine.treatments import PlanItem, effects_for, onset, steady_effect
from tests.fixtures.twin.factories import make_history


def _paired_difference(history, plan, variable, years, n=400):
    """Median plan-minus-current-care difference of the true value at ``years`` on shared draws."""
    cal = calibrate(history)
    t = time_grid(0.0, max(years) + 0.1, 7.0)
    draws = Draws.make(n, t.size, 1)
    base = simulate(cal, t, exposures_under(cal, ()), draws)[variable][0]
    alt = simulate(cal, t, exposures_under(cal, plan), draws)[variable][0]
    idx = [int(np.argmin(np.abs(t / 365.25 - y))) for y in years]
    return base[:, idx], alt[:, idx]


def test_it_covers_every_treatment_class_of_the_history_contract():
    keys = {row.key for row in treatments.catalogue()}
    assert set(TREATMENT_CLASSES) <= keys
    assert set(treatments.LIFESTYLE_KEYS) <= keys


def test_it_gives_every_row_a_source():
    assert all(len(row.source) > 20 for row in treatments.catalogue())


def test_it_rejects_a_row_without_a_source():
    row = dataclasses.replace(treatments.catalogue()[0], source=" ")
    with pytest.raises(ValueError, match="source"):
        treatments._check_catalogue([row])


def test_it_lowers_sbp_by_law_2003_standard_dose_from_154():
    (row,) = effects_for("ccb", "sbp")
    assert float(steady_effect(row, 1.0, 154.0)) == pytest.approx(-9.1)
    assert float(steady_effect(row, 0.5, 154.0)) == pytest.approx(-7.1, abs=0.05)
    # one mmHg more per 10 mmHg higher pretreatment SBP
    assert float(steady_effect(row, 1.0, 174.0)) == pytest.approx(-11.1)


def test_it_never_flips_the_sign_of_an_effect_at_low_baseline():
    (row,) = effects_for("metformin", "hba1c")
    assert float(steady_effect(row, 1.0, 4.0)) == 0.0


def test_its_onset_is_the_exact_solution_of_the_first_order_lag():
    tau, start, stop = 30.0, 10.0, 100.0
    sol = solve_ivp(
        lambda t, x: [((start <= t < stop) - x[0]) / tau],
        (0.0, 300.0),
        [0.0],
        t_eval=np.linspace(0, 300, 61),
        rtol=1e-10,
        atol=1e-12,
        max_step=1.0,
    )
    assert np.allclose(onset(sol.t, start, stop, tau), sol.y[0], atol=1e-3)


def test_one_standard_dose_antihypertensive_at_154_lowers_sbp_by_9_1_through_the_twin():
    h = make_history(sbp=(154.0, 0.0), dbp=(97.0, 0.0), noise=0.3, n=12)
    base, alt = _paired_difference(h, [PlanItem("thiazide")], "sbp", [1.0])
    assert np.median(alt - base) == pytest.approx(-9.1, abs=1.0)


def test_two_antihypertensive_classes_add():
    h = make_history(sbp=(154.0, 0.0), dbp=(97.0, 0.0), noise=0.3, n=12)
    base, one = _paired_difference(h, [PlanItem("arb")], "sbp", [1.0])
    _, two = _paired_difference(h, [PlanItem("arb"), PlanItem("ccb")], "sbp", [1.0])
    assert np.median(two - base) == pytest.approx(2 * np.median(one - base), rel=0.05)


def test_metformin_alone_at_hba1c_8_5_lowers_it_by_about_1_1_at_6_to_12_months():
    h = make_history(hba1c=(8.5, 0.0), diabetes=True, noise=0.3, n=12)
    base, alt = _paired_difference(h, [PlanItem("metformin")], "hba1c", [0.5, 1.0])
    drop = np.median(alt - base, axis=0)
    assert np.all((drop < -0.9) & (drop > -1.3))


def test_a_high_intensity_statin_lowers_ldl_by_half_or_more():
    h = make_history(ldl=(160.0, 0.0), noise=0.3, n=12)
    base, alt = _paired_difference(h, [PlanItem("statin", intensity="high")], "ldl", [1.0])
    assert 1.0 - np.median(alt / base) >= 0.50


def test_a_plan_item_rejects_unknown_interventions_and_doses():
    with pytest.raises(ValueError, match="intervention"):
        PlanItem("aspirin")
    with pytest.raises(ValueError, match="dose"):
        PlanItem("thiazide", dose=3.0)
    with pytest.raises(ValueError, match="stop"):
        PlanItem("thiazide", start=10.0, stop=5.0)


def test_it_lists_the_sources_of_every_effect_of_an_intervention():
    src = treatments.sources_for(["sglt2_inhibitor"])
    assert {s.split(":")[0] for s in src["sglt2_inhibitor"]} == {"hba1c", "sbp", "weight"}


def test_renewed_prescriptions_continue_one_course_instead_of_stacking():
    from models_engine.calibration import effect_matrix

    t = np.array([-2000.0, -1000.0, -10.0])
    one = (TreatmentExposure("statin", -3000.0, intensity="moderate"),)
    starts = np.arange(-3000.0, -365.0, 365.0)
    renewals = (
        *(TreatmentExposure("statin", s, s + 365.0, intensity="moderate") for s in starts),
        TreatmentExposure("statin", -260.0, None, intensity="moderate"),
    )
    readings = (np.array([-3100.0, -1500.0, -300.0]), np.array([160.0, 100.0, 98.0]))
    ones = np.ones(1)
    a = effect_matrix("ldl", one, t, ones, ones, ones, readings)
    b = effect_matrix("ldl", renewals, t, ones, ones, ones, readings)
    assert np.allclose(a, b, atol=0.01)


def test_planning_a_drug_the_patient_already_takes_at_the_same_dose_changes_nothing():
    h = make_history(
        hba1c=(7.5, 0.0),
        diabetes=True,
        treatments=(TreatmentExposure("metformin", -2000.0),),
    )
    base, alt = _paired_difference(h, [PlanItem("metformin")], "hba1c", [1.0])
    assert np.allclose(base, alt)


def test_a_class_is_labelled_without_the_intensity_of_one_of_its_rows():
    assert treatments.label_for("statin") == "Statin"
    assert treatments.label_for("ace_inhibitor") == "ACE inhibitor"
    assert treatments.label_for("aspirin") == "aspirin"
