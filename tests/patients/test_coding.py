"""Units and values at the records boundary."""

from __future__ import annotations

import pytest

from patients import coding


def var(key: str) -> coding.Variable:
    return coding.VARIABLE_BY_KEY[key]


def test_it_converts_glucose_from_mmol_per_litre_to_mg_per_decilitre() -> None:
    assert coding.to_canonical(var("glucose"), 7.0, "mmol/L") == pytest.approx(126.1, abs=0.1)


def test_it_converts_hba1c_from_ifcc_mmol_per_mol_to_ngsp_percent() -> None:
    # 48 mmol/mol is the diabetes threshold of 6.5 % (IFCC-NGSP master equation).
    assert coding.to_canonical(var("hba1c"), 48, "mmol/mol") == pytest.approx(6.54, abs=0.01)
    assert coding.to_canonical(var("hba1c"), 53, "mmol/mol") == pytest.approx(7.0, abs=0.05)


def test_it_converts_cholesterol_from_mmol_per_litre_to_mg_per_decilitre() -> None:
    assert coding.to_canonical(var("ldl"), 2.6, "mmol/L") == pytest.approx(100.5, abs=0.1)
    assert coding.to_canonical(var("total_chol"), 5.0, "mmol/L") == pytest.approx(193.4, abs=0.1)


def test_it_converts_weight_from_pounds_to_kilograms() -> None:
    assert coding.to_canonical(var("weight"), 200, "[lb_av]") == pytest.approx(90.72, abs=0.01)
    assert coding.to_canonical(var("weight"), 200, "lbs") == pytest.approx(90.72, abs=0.01)


def test_it_accepts_common_spellings_of_the_same_unit() -> None:
    assert coding.to_canonical(var("sbp"), 120, "mmHg") == 120
    assert coding.to_canonical(var("glucose"), 100, "mg/dl") == 100


def test_it_rejects_a_unit_that_cannot_be_converted() -> None:
    with pytest.raises(coding.UnitError, match="not accepted for body weight"):
        coding.to_canonical(var("weight"), 70, "mmol/L")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sbp", 900, "systolic blood pressure 900 mm\\[Hg\\] is outside the possible range 40–300"),
        ("weight", -3, "body weight -3 kg is outside the possible range"),
        ("hba1c", 40, "HbA1c 40 % is outside"),
    ],
)
def test_it_rejects_impossible_values_naming_the_variable_and_range(
    key: str, value: float, message: str
) -> None:
    with pytest.raises(coding.RangeError, match=message):
        coding.check_possible(var(key), value)


def test_it_flags_possible_but_implausible_values() -> None:
    assert not coding.is_plausible(var("egfr"), 158)
    assert coding.is_plausible(var("egfr"), 75)


def test_it_classifies_medications_by_ingredient_with_dose_and_statin_intensity() -> None:
    (hctz,) = coding.classify_medication("Hydrochlorothiazide 25 MG")
    assert (hctz.treatment_class, hctz.dose_multiple) == ("thiazide", 1.0)
    (statin,) = coding.classify_medication("Atorvastatin 80 MG Oral Tablet")
    assert (statin.treatment_class, statin.statin_intensity) == ("statin", "high")
    (simva,) = coding.classify_medication("Simvistatin 10 MG")  # Synthea's spelling
    assert (simva.ingredient, simva.statin_intensity) == ("simvastatin", "low")
    combo = coding.classify_medication("Lisinopril 10 MG / Hydrochlorothiazide 12.5 MG Oral Tablet")
    assert [(c.treatment_class, c.dose_multiple) for c in combo] == [
        ("ace_inhibitor", 1.0),
        ("thiazide", 0.5),
    ]
    assert coding.classify_medication("Acetaminophen 325 MG Oral Tablet") == []
