"""What-if plans are compared with current care on the same draws, with their sources."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models_engine.calibration import calibrate
from models_engine.treatments import PlanItem
from models_engine.whatif import CURRENT_CARE, compare_plans
from tests.fixtures.twin.factories import make_history


@pytest.fixture(scope="module")
def outcomes():
    cal = calibrate(make_history(sbp=(158.0, 0.5), hba1c=(6.2, 0.05), smoker=True, seed=9))
    plans = {
        "same as now": [],
        "thiazide": [PlanItem("thiazide")],
        "thiazide + statin": [PlanItem("thiazide"), PlanItem("statin", intensity="high")],
        "quit smoking": [PlanItem("smoking_cessation")],
        "lose 5 kg": [PlanItem("weight_loss_5kg")],
    }
    return compare_plans(cal, plans, n_samples=200, seed=3)


def test_it_puts_current_care_first(outcomes):
    assert next(iter(outcomes)) == CURRENT_CARE


def test_an_empty_plan_reproduces_current_care_exactly(outcomes):
    same, base = outcomes["same as now"], outcomes[CURRENT_CARE]
    assert np.array_equal(same.forecast.variables["sbp"].true, base.forecast.variables["sbp"].true)
    assert same.arr_10y == (0.0, 0.0, 0.0)


def test_an_antihypertensive_lowers_sbp_at_one_year_and_the_ten_year_risk(outcomes):
    base, plan = outcomes[CURRENT_CARE], outcomes["thiazide"]
    assert plan.sbp_1y[0] < base.sbp_1y[0] - 5.0
    assert plan.risk_10y < base.risk_10y
    assert plan.arr_10y[1] > 0.0  # even the pessimistic decile gains


def test_adding_a_statin_reduces_risk_further(outcomes):
    assert outcomes["thiazide + statin"].arr_10y[0] > outcomes["thiazide"].arr_10y[0]


def test_quitting_smoking_reduces_risk_for_a_smoker(outcomes):
    assert outcomes["quit smoking"].arr_10y[0] > 0.0


def test_losing_5_kg_lowers_bp_and_hba1c_through_the_weight_couplings(outcomes):
    base, plan = outcomes[CURRENT_CARE], outcomes["lose 5 kg"]
    d_sbp = np.median(
        plan.forecast.variables["sbp"].true[:, -1] - base.forecast.variables["sbp"].true[:, -1]
    )
    d_a1c = np.median(
        plan.forecast.variables["hba1c"].true[:, -1] - base.forecast.variables["hba1c"].true[:, -1]
    )
    assert d_sbp == pytest.approx(-5 * 1.05, abs=0.1)
    assert d_a1c == pytest.approx(-0.5, abs=0.02)


def test_it_lists_the_source_of_every_effect_used(outcomes):
    src = outcomes["thiazide + statin"].sources
    assert set(src) == {"thiazide", "statin", "risk"}
    assert any("Law" in s for s in src["thiazide"])


def test_it_reports_hba1c_and_time_to_diabetes(outcomes):
    o = outcomes[CURRENT_CARE]
    assert o.hba1c_1y[1] <= o.hba1c_1y[0] <= o.hba1c_1y[2]
    assert o.hba1c_5y[0] > o.hba1c_1y[0] - 0.5
    assert 0.0 <= o.diabetes_10y <= 1.0


def test_it_serialises_to_plain_json(outcomes):
    json.dumps({k: v.to_dict() for k, v in outcomes.items()}, allow_nan=False)


def test_it_refuses_more_than_six_plans():
    cal = calibrate(make_history())
    plans = {str(i): [PlanItem("thiazide")] for i in range(7)}
    with pytest.raises(ValueError, match="at most 6"):
        compare_plans(cal, plans)


def test_it_accepts_plans_as_plain_tuples_and_matches_the_same_plan_items():
    cal = calibrate(make_history(seed=1))
    a = compare_plans(cal, {"p": [("ccb", 0.5, 30.0, 400.0)]}, n_samples=50, seed=2)
    b = compare_plans(
        cal, {"p": [PlanItem("ccb", dose=0.5, start=30.0, stop=400.0)]}, n_samples=50, seed=2
    )
    assert a["p"].sbp_1y == b["p"].sbp_1y


def test_the_twin_facade_runs_calibrate_forecast_compare_and_drift():
    from models_engine.twin import Twin

    twin = Twin.from_history(make_history(seed=6), n_samples=100)
    fc = twin.forecast(horizon_years=2)
    outcomes = twin.compare({"arb": [PlanItem("arb")]}, horizon_years=2)
    drift = twin.drift("sbp", 100.0, 250.0, within=fc)
    assert set(outcomes) == {CURRENT_CARE, "arb"}
    assert drift.outside95


def test_a_plans_risk_is_current_risk_times_the_trial_relative_risk_of_its_changes():
    cal = calibrate(make_history(sbp=(154.0, 0.0), dbp=(97.0, 0.0), noise=0.3, n=12, seed=2))
    out = compare_plans(cal, {"thiazide": [PlanItem("thiazide")]}, n_samples=200, seed=1)
    ratio = out["thiazide"].risk_10y / out[CURRENT_CARE].risk_10y
    # Ettehad 2016: RR 0.80 per 10 mmHg; the standard dose lowers SBP by about 9.1 mmHg
    assert ratio == pytest.approx(0.80**0.91, abs=0.03)


def test_a_statin_lowers_risk_even_where_prevent_alone_would_not():
    # in older women PREVENT's age interaction makes lower cholesterol look riskier
    h = make_history(
        age=75.0, sex="female", ldl=(155.0, 0.0), sbp=(170.0, 0.5), diabetes=True, seed=3
    )
    out = compare_plans(
        calibrate(h), {"statin": [PlanItem("statin", intensity="high")]}, n_samples=200
    )
    assert out["statin"].arr_10y[1] > 0.0


def test_adding_a_class_the_patient_already_takes_at_the_same_dose_changes_nothing():
    from models_engine.history import TreatmentExposure

    on_double = make_history(
        sbp=(150.0, 0.3),
        seed=4,
        treatments=(TreatmentExposure("ace_inhibitor", -1500.0, None, 1.0),),
    )
    cal = calibrate(on_double)
    out = compare_plans(
        cal,
        {
            "add ACE inhibitor": [PlanItem("ace_inhibitor")],
            "add at half dose": [PlanItem("ace_inhibitor", dose=0.5)],
            "raise to 2x": [PlanItem("ace_inhibitor", dose=2.0)],
        },
        n_samples=200,
        seed=1,
    )
    current = out[CURRENT_CARE].sbp_1y[0]
    for name in ("add ACE inhibitor", "add at half dose"):
        assert out[name].sbp_1y[0] == pytest.approx(current)
        assert any("adds nothing" in n for n in out[name].forecast.notes)
    assert out["raise to 2x"].sbp_1y[0] < current - 1.0
    assert any("raises it to 2" in n for n in out["raise to 2x"].forecast.notes)


def test_a_stronger_statin_is_an_escalation_and_a_weaker_one_is_left_out():
    from models_engine.history import TreatmentExposure

    h = make_history(
        ldl=(150.0, 0.0),
        seed=6,
        treatments=(TreatmentExposure("statin", -900.0, None, 1.0, "moderate"),),
    )
    out = compare_plans(
        calibrate(h),
        {
            "high": [PlanItem("statin", intensity="high")],
            "low": [PlanItem("statin", intensity="low")],
        },
        n_samples=200,
        seed=2,
    )
    ldl_1y = {k: float(np.median(o.forecast.variables["ldl"].true[:, 12])) for k, o in out.items()}
    assert ldl_1y["high"] < ldl_1y[CURRENT_CARE] - 5.0
    assert ldl_1y["low"] == pytest.approx(ldl_1y[CURRENT_CARE])


@pytest.fixture(scope="module")
def on_thiazide_and_statin():
    from models_engine.history import TreatmentExposure

    h = make_history(
        sbp=(140.0, 0.0),
        dbp=(85.0, 0.0),
        noise=0.3,
        n=12,
        seed=5,
        treatments=(
            TreatmentExposure("thiazide", -4000.0, None, 1.0),
            TreatmentExposure("statin", -4000.0, None, 1.0, "moderate"),
        ),
    )
    cal = calibrate(h)
    plans = {
        "stop thiazide": [PlanItem("thiazide", start=60.0, action="stop")],
        "stop statin": [PlanItem("statin", action="stop")],
        "stop metformin": [PlanItem("metformin", action="stop")],
    }
    return compare_plans(cal, plans, n_samples=200, seed=1)


def test_stopping_a_class_removes_its_effect_from_the_stop_day_on(on_thiazide_and_statin):
    base = on_thiazide_and_statin[CURRENT_CARE].forecast
    stop = on_thiazide_and_statin["stop thiazide"].forecast
    t = base.t_days
    diff = np.median(stop.variables["sbp"].true - base.variables["sbp"].true, axis=0)
    assert np.all(diff[t <= 60.0] == 0.0)  # nothing changes before the stop day
    # Law 2003 at this pretreatment level (about 150 mmHg): -9.1 + 0.10 x 4 = -8.7 mmHg comes back,
    # first-order with the row's 14-day time constant: 89 % after 31 days, all of it by a year
    steady = diff[int(np.searchsorted(t, 365.0))]
    assert 6.0 < steady < 11.0
    assert diff[int(np.searchsorted(t, 91.0))] == pytest.approx(
        steady * (1 - np.exp(-(t[t >= 91.0][0] - 60.0) / 14.0)), rel=0.05
    )


def test_stopping_a_statin_raises_ldl_and_the_ten_year_risk(on_thiazide_and_statin):
    base, stop = on_thiazide_and_statin[CURRENT_CARE], on_thiazide_and_statin["stop statin"]
    ldl = {
        k: float(np.median(o.forecast.variables["ldl"].true[:, 12]))
        for k, o in (("base", base), ("stop", stop))
    }
    assert ldl["stop"] > ldl["base"] * 1.3  # a moderate statin lowers LDL by 40 % (Law 2003)
    assert stop.risk_10y > base.risk_10y
    assert stop.arr_10y[2] < 0.0  # more events, even in the optimistic decile


def test_stopping_a_class_lists_its_sources_and_how_it_wears_off(on_thiazide_and_statin):
    from models_engine.treatments import STOP_SOURCE

    out = on_thiazide_and_statin["stop thiazide"]
    assert out.sources["thiazide"][-1] == STOP_SOURCE
    assert any("Law" in s for s in out.sources["thiazide"])
    assert any("Thiazide diuretic: stopped" in n for n in out.forecast.notes)
    assert out.to_dict()["plan"] == [
        {
            "intervention": "thiazide",
            "dose": 1.0,
            "start": 60.0,
            "stop": None,
            "intensity": None,
            "action": "stop",
        }
    ]


def test_stopping_a_class_not_taken_changes_nothing_and_says_so(on_thiazide_and_statin):
    base, stop = on_thiazide_and_statin[CURRENT_CARE], on_thiazide_and_statin["stop metformin"]
    assert np.array_equal(
        stop.forecast.variables["hba1c"].true, base.forecast.variables["hba1c"].true
    )
    assert any("nothing to stop" in n for n in stop.forecast.notes)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (dict(intervention="smoking_cessation"), "only a drug class"),
        (dict(intervention="thiazide", dose=2.0), "no stop date, dose or intensity"),
        (dict(intervention="thiazide", start=10.0, stop=20.0), "no stop date, dose or intensity"),
        (dict(intervention="thiazide", action="pause"), "action must be one of"),
    ],
)
def test_it_rejects_a_stop_item_that_makes_no_sense(item, message):
    with pytest.raises(ValueError, match=message):
        PlanItem(**{"action": "stop", **item})


def test_it_rejects_a_plan_that_both_stops_and_adds_one_class():
    cal = calibrate(make_history())
    plan = [PlanItem("thiazide", action="stop"), PlanItem("thiazide", dose=2.0)]
    with pytest.raises(ValueError, match="both stop and add thiazide"):
        compare_plans(cal, {"switch": plan}, n_samples=20)
