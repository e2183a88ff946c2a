"""Framingham general CVD (D'Agostino 2008) against published worked examples.

No worked example of the continuous equation was found in the paper (its Table 2 gives the
coefficients; its worked material is the points-based score sheet), so the tests use independently
published outputs of that equation:

* The Framingham Heart Study "General CVD 10-year risk" calculator examples (framinghamheartstudy.org,
  risk-functions page for D'Agostino 2008): a 61-year-old woman, TC 180 mg/dL, HDL 47 mg/dL, untreated
  SBP 124 mmHg, smoker, no diabetes: 10.48 %; a 53-year-old man, TC 161, HDL 55, treated SBP 125,
  non-smoker, diabetes: 15.62 %.
* The R package CVrisk documentation (``ascvd_10y_frs``): a 55-year-old man, TC 213, HDL 50,
  untreated SBP 140, non-smoker, no diabetes: 13.53 %.

Together they exercise the women's cholesterol coefficient (1.20904) and the treated/untreated SBP
coefficients that several public ports get wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from models_engine.risk import RiskValue, framingham_2008

WOMAN = {
    "age": 61,
    "sex": "female",
    "total_chol": 180,
    "hdl": 47,
    "sbp": 124,
    "bp_treated": False,
    "smoker": True,
    "diabetes": False,
}
MAN = {
    "age": 53,
    "sex": "male",
    "total_chol": 161,
    "hdl": 55,
    "sbp": 125,
    "bp_treated": True,
    "smoker": False,
    "diabetes": True,
}
CVRISK_MAN = {
    "age": 55,
    "sex": "male",
    "total_chol": 213,
    "hdl": 50,
    "sbp": 140,
    "bp_treated": False,
    "smoker": False,
    "diabetes": False,
}


@pytest.mark.parametrize(
    ("profile", "percent"),
    [(WOMAN, 10.48), (MAN, 15.62), (CVRISK_MAN, 13.53)],
    ids=["woman", "man", "cvrisk"],
)
def test_it_reproduces_the_published_examples_to_two_decimals_of_a_percent(
    profile: dict[str, object], percent: float
) -> None:
    risk = framingham_2008(**profile)
    assert round(100 * risk, 2) == percent


def test_it_returns_a_float_subclass_for_scalars() -> None:
    risk = framingham_2008(**WOMAN)
    assert isinstance(risk, RiskValue) and isinstance(risk, float)
    assert risk.out_of_range == () and risk.in_range


def test_it_broadcasts_arrays_like_repeated_scalar_calls() -> None:
    ages = np.array([[40.0], [55.0], [70.0]])
    sbp = np.array([110.0, 130.0, 150.0, 170.0])
    risk = framingham_2008(**{**WOMAN, "age": ages, "sbp": sbp})
    assert risk.shape == (3, 4)
    single = framingham_2008(**{**WOMAN, "age": 55.0, "sbp": 150.0})
    assert risk[1, 2] == pytest.approx(float(single), rel=1e-12)


def test_it_flags_ages_outside_the_derivation_range() -> None:
    risk = framingham_2008(**{**MAN, "age": np.array([29.0, 50.0, 80.0])})
    assert risk.in_range.tolist() == [False, True, False]
    assert risk.out_of_range[0].field == "age" and risk.out_of_range[0].n_outside == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sex": "other"}, "sex"),
        ({"total_chol": -1}, "total_chol"),
        ({"sbp": float("inf")}, "sbp"),
        ({"diabetes": 0.5}, "diabetes"),
    ],
)
def test_it_rejects_impossible_inputs_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        framingham_2008(**{**MAN, **change})
