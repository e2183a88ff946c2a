"""Drug names (generic and brand) mapped to generic names and classes, with dosing parsed."""

from __future__ import annotations

import pytest

from nlp.medications import classes_of, load_drug_lexicon, parse_sig
from nlp.pipeline import analyse
from nlp.types import Entity


def _meds(text: str) -> list[Entity]:
    return [e for e in analyse(text).entities if e.label == "medication"]


@pytest.mark.parametrize(
    ("name", "generic", "drug_class"),
    [
        ("hydrochlorothiazide", "hydrochlorothiazide", "thiazide"),
        ("HCTZ", "hydrochlorothiazide", "thiazide"),
        ("Zestril", "lisinopril", "ace_inhibitor"),
        ("Cozaar", "losartan", "arb"),
        ("Norvasc", "amlodipine", "ccb"),
        ("Toprol XL", "metoprolol", "beta_blocker"),
        ("Lasix", "furosemide", "loop_diuretic"),
        ("Lipitor", "atorvastatin", "statin"),
        ("Zetia", "ezetimibe", "ezetimibe"),
        ("Glucophage", "metformin", "metformin"),
        ("Jardiance", "empagliflozin", "sglt2_inhibitor"),
        ("Ozempic", "semaglutide", "glp1_ra"),
        ("glipizide", "glipizide", "sulfonylurea"),
        ("Januvia", "sitagliptin", "dpp4_inhibitor"),
        ("Actos", "pioglitazone", "pioglitazone"),
        ("Lantus", "insulin glargine", "insulin"),
        ("Coumadin", "warfarin", "anticoagulant"),
    ],
)
def test_it_maps_brand_and_generic_names_to_a_generic_and_class(
    name: str, generic: str, drug_class: str
) -> None:
    (med,) = _meds(f"She takes {name} every day.")
    assert med.normalized == generic
    assert med.attributes["drug_class"] == drug_class
    assert med.text == name


def test_it_carries_rxnorm_codes_for_the_cardiometabolic_drugs() -> None:
    (med,) = _meds("Metformin 500 mg twice daily.")
    assert med.code == "6809"


def test_it_lists_every_class_of_a_combination_product() -> None:
    (med,) = _meds("Hyzaar 100/25 daily.")
    assert med.normalized == "losartan and hydrochlorothiazide"
    assert med.attributes["drug_classes"] == ["arb", "thiazide"]
    assert classes_of("sitagliptin and metformin") == ("dpp4_inhibitor", "metformin")


@pytest.mark.parametrize(
    "sentence",
    [
        "She will go to bed today and put ice on it.",
        "Sodium 140, potassium 4.1, glucose 98.",
        "The thyroid gland is normal; alkaline phosphatase and ferritin were normal.",
        "He is well versed in his care.",
        "ASA class II, general anesthesia.",
        "Stool guaiac negative.",
    ],
)
def test_it_ignores_common_words_and_analytes_that_large_lexicons_list_as_drugs(
    sentence: str,
) -> None:
    assert _meds(sentence) == []


def test_it_recognises_a_capitalised_brand_that_is_also_an_english_word() -> None:
    (med,) = _meds("Versed 2 mg IV was given.")
    assert med.normalized == "midazolam"


def test_it_reads_a_comma_separated_medication_list_with_doses() -> None:
    meds = _meds(
        "MEDICATIONS:, Lasix 40mg qd, Lanoxin 0.125mg qd, Capoten 2.5mg bid, ASA 325mg qd, "
        "Plavix 75 mg p.o. q.d., lisinopril/HCTZ 20/25 daily."
    )
    assert [m.normalized for m in meds] == [
        "furosemide",
        "digoxin",
        "captopril",
        "aspirin",
        "clopidogrel",
        "lisinopril",
        "hydrochlorothiazide",
    ]
    by_name = {m.normalized: m.attributes for m in meds}
    assert by_name["digoxin"]["dose_value"] == pytest.approx(0.125)
    assert by_name["captopril"]["frequency"] == "bid"
    assert by_name["clopidogrel"]["route"] == "oral"
    assert all(m.section == "medications" for m in meds)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (" 10 mg p.o. b.i.d.", {"dose": "10 mg", "route": "oral", "frequency": "bid"}),
        (
            " 20 units subcutaneously at bedtime",
            {"dose_value": 20.0, "dose_unit": "units", "route": "subcutaneous", "frequency": "qhs"},
        ),
        (" 5-10 mg q.4-6h. p.r.n. pain", {"dose": "5-10 mg", "prn": True}),
        (" 2 puffs inhaled q6h", {"dose": "2 puffs", "route": "inhaled", "frequency": "q6h"}),
        (" 81 mg once a day", {"dose_value": 81.0, "frequency": "daily"}),
        (" 0.4 mg sublingual as needed for chest pain", {"route": "sublingual", "prn": True}),
        (" weekly injection", {"frequency": "weekly"}),
        (", 150-mg tablet q.a.m., #30 tablets", {"dose": "150 mg", "frequency": "qam"}),
    ],
)
def test_it_parses_dose_route_and_frequency(window: str, expected: dict[str, object]) -> None:
    sig = parse_sig(window)
    for key, value in expected.items():
        assert sig[key] == value, key


def test_it_does_not_take_a_dispensing_count_for_a_dose() -> None:
    assert "dose" not in parse_sig(", #30 tablets dispensed")


def test_it_stops_the_dosing_window_at_the_next_drug() -> None:
    meds = _meds("Lisinopril and metformin 500 mg bid.")
    assert "dose" not in meds[0].attributes
    assert meds[1].attributes["dose"] == "500 mg"


def test_it_flags_drugs_named_in_the_allergy_section_as_allergies() -> None:
    (med,) = _meds("ALLERGIES:, Penicillin causes hives.,PLAN:, Continue.")
    assert med.attributes["allergy"] is True
    assert med.action is None


def test_it_reports_class_mentions_without_a_generic() -> None:
    (med,) = _meds("She could not tolerate a statin.")
    assert med.normalized == "statin"
    assert med.attributes["class_mention"] is True


def test_the_lexicon_is_large_and_filtered() -> None:
    lexicon = load_drug_lexicon()
    assert len(lexicon.variants) > 50_000
    for word in ("at 10", "thyroid gland", "ferritin", "sodium", "glucose"):
        assert word not in lexicon.variants
