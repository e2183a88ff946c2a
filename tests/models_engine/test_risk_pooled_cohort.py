"""2013 Pooled Cohort Equations against Goff 2013 Table A and an independent implementation.

* Goff DC Jr et al., Circulation 2014;129(suppl 2):S49, Table A ("Example of the Pooled Cohort
  Equations"): a 55-year-old with TC 213 mg/dL, HDL 50 mg/dL, untreated SBP 120 mmHg, non-smoker,
  no diabetes has a 10-year hard ASCVD risk of 2.1 % (white woman), 3.0 % (African-American woman),
  5.3 % (white man) and 6.1 % (African-American man). The white-man figure is computed in the paper
  from the rounded individual sum (60.69); the unrounded equation gives 5.38 %, so that case is
  checked to within 0.1 percentage point.
* R preventr (MIT), ``tests/testthat/test-other_models.R``, original PCE ("pce_orig") on the profile
  age 50, TC 200, HDL 45, treated SBP 160, diabetes, non-smoker: white woman 0.064, Black woman 0.245;
  white woman aged 67, 0.27; white man aged 59, 0.262, and with SBP 148, 0.232 (3 dp, halves up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from models_engine.risk import RiskArray, RiskValue, pooled_cohort

TABLE_A = {
    "age": 55,
    "total_chol": 213,
    "hdl": 50,
    "sbp": 120,
    "bp_treated": False,
    "smoker": False,
    "diabetes": False,
}
PREVENTR = {
    "age": 50,
    "total_chol": 200,
    "hdl": 45,
    "sbp": 160,
    "bp_treated": True,
    "smoker": False,
    "diabetes": True,
}


def half_up(value: float, dp: int) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    ("sex", "race", "percent"),
    [("female", "white", 2.1), ("female", "black", 3.0), ("male", "black", 6.1)],
)
def test_it_reproduces_the_table_a_worked_example_to_the_printed_precision(
    sex: str, race: str, percent: float
) -> None:
    risk = pooled_cohort(sex=sex, race=race, **TABLE_A)
    assert half_up(100 * risk, 1) == percent


def test_it_is_within_rounding_of_the_table_a_white_man_figure() -> None:
    risk = pooled_cohort(sex="male", race="white", **TABLE_A)
    assert abs(100 * risk - 5.3) < 0.1


@pytest.mark.parametrize(
    ("sex", "race", "changes", "published"),
    [
        ("female", "white", {}, 0.064),
        ("female", "black", {}, 0.245),
        ("female", "white", {"age": 67}, 0.270),
        ("male", "white", {"age": 59}, 0.262),
        ("male", "white", {"age": 59, "sbp": 148}, 0.232),
    ],
)
def test_it_matches_preventrs_pooled_cohort_outputs(
    sex: str, race: str, changes: dict[str, float], published: float
) -> None:
    assert half_up(pooled_cohort(sex=sex, race=race, **{**PREVENTR, **changes}), 3) == published


def test_it_returns_a_float_for_scalars_and_an_array_for_arrays() -> None:
    one = pooled_cohort(sex="female", race="white", **TABLE_A)
    assert isinstance(one, float) and isinstance(one, RiskValue) and one.in_range
    many = pooled_cohort(
        sex="female", race="white", **{**TABLE_A, "sbp": np.array([110.0, 120.0, 150.0])}
    )
    assert isinstance(many, RiskArray) and many.shape == (3,)
    assert many[1] == pytest.approx(float(one), rel=1e-12)
    assert np.all(np.diff(many) > 0)


def test_it_uses_the_treated_sbp_coefficients_when_bp_is_treated() -> None:
    untreated = pooled_cohort(sex="male", race="black", **{**TABLE_A, "sbp": 140})
    treated = pooled_cohort(sex="male", race="black", **{**TABLE_A, "sbp": 140, "bp_treated": True})
    # Goff 2013 Table A: ln SBP 1.916 treated vs 1.809 untreated for African-American men.
    expected_ratio = np.exp((1.916 - 1.809) * np.log(140))
    hazard = np.log(1 - treated) / np.log(1 - untreated)
    assert hazard == pytest.approx(expected_ratio, rel=1e-9)


def test_it_flags_ages_outside_40_to_79() -> None:
    risk = pooled_cohort(sex="female", race="white", **{**TABLE_A, "age": 35})
    assert [f.field for f in risk.out_of_range] == ["age"]
    assert not risk.in_range


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"race": "asian"}, "race"),
        ({"sex": "F"}, "sex"),
        ({"hdl": float("nan")}, "hdl"),
        ({"smoker": 3}, "smoker"),
    ],
)
def test_it_rejects_impossible_inputs_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    kwargs: dict[str, object] = {"sex": "female", "race": "white", **TABLE_A, **change}
    with pytest.raises(ValueError, match=field):
        pooled_cohort(**kwargs)
