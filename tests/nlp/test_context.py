"""ConText-style assertions: negation, history, hypotheticals, family, uncertainty, actions."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlp.context import find_triggers, load_rules, medication_action
from nlp.pipeline import analyse
from nlp.types import Entity

DATA = Path(__file__).resolve().parents[2] / "nlp" / "data"


def _entity(text: str, surface: str) -> Entity:
    for entity in analyse(text).entities:
        if entity.text.lower() == surface.lower():
            return entity
    raise AssertionError(f"{surface!r} not found in {text!r}")


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("The patient denies chest pain.", "chest pain"),
        ("No evidence of pneumonia.", "pneumonia"),
        ("Chest x-ray was negative for pneumonia or effusion.", "effusion"),
        ("Regular rate and rhythm without murmur.", "murmur"),
        ("Well-developed female in no acute distress.", "acute distress"),
        ("She is free of palpitations.", "palpitations"),
        ("Troponin was negative and edema was not present.", "edema"),
        ("Pulmonary embolism was ruled out.", "pulmonary embolism"),
        ("The patient does not have diabetes.", "diabetes"),
    ],
)
def test_it_negates_findings_in_the_scope_of_a_trigger(sentence: str, target: str) -> None:
    assert _entity(sentence, target).negated


def test_it_negates_every_item_of_a_coordinated_list() -> None:
    text = "She denies chest pain or shortness of breath, nausea, and palpitations."
    for target in ("chest pain", "shortness of breath", "nausea", "palpitations"):
        assert _entity(text, target).negated, target


def test_a_negated_clause_does_not_reach_the_drug_after_the_comma() -> None:
    text = "As she has no pain, I have decreased the prednisone."
    assert _entity(text, "pain").negated
    prednisone = _entity(text, "prednisone")
    assert not prednisone.negated
    assert prednisone.action == "decrease"


@pytest.mark.parametrize(
    ("sentence", "affirmed"),
    [
        ("No chest pain but she has shortness of breath.", "shortness of breath"),
        ("No fever; however, she has a cough.", "cough"),
        ("No dyspnea as her heart failure is controlled.", "heart failure"),
        ("She has no edema, which argues against heart failure.", "heart failure"),
        (
            "The patient has no history of stroke, and hypertension is well controlled.",
            "hypertension",
        ),
        ("Although she denies fever, she reports chills.", "chills"),
        ("5)Venous stasis; with no h/o DVT, 6)TURP for BPH.", "BPH"),
    ],
)
def test_the_scope_ends_at_conjunctions_and_new_clauses(sentence: str, affirmed: str) -> None:
    assert not _entity(sentence, affirmed).negated


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("There has been no increase in the swelling.", "swelling"),
        ("No change in her chest pain since last visit.", "chest pain"),
        ("Not only fatigue but also dyspnea.", "fatigue"),
        ("Sputum grew gram negative rods consistent with pneumonia.", "pneumonia"),
        ("She tolerated the procedure without difficulty and had nausea afterwards.", "nausea"),
        ("Pneumonia has not been ruled out.", "pneumonia"),
        ("Risks include but are not limited to bleeding and infection.", "bleeding"),
    ],
)
def test_pseudo_negations_do_not_negate(sentence: str, target: str) -> None:
    assert not _entity(sentence, target).negated


def test_no_change_in_a_drug_means_continue_not_negation() -> None:
    lisinopril = _entity("No change in lisinopril.", "lisinopril")
    assert not lisinopril.negated
    assert lisinopril.action == "continue"


def test_it_negates_a_drug_the_patient_is_not_taking() -> None:
    assert _entity("She is not taking aspirin.", "aspirin").negated


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("History of myocardial infarction.", "myocardial infarction"),
        ("He is status post CABG.", "CABG"),
        ("She had a stroke 10 years ago.", "stroke"),
        ("Previous TIA.", "TIA"),
    ],
)
def test_it_marks_historical_mentions(sentence: str, target: str) -> None:
    entity = _entity(sentence, target)
    assert entity.historical
    assert not entity.negated


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("Return to clinic if chest pain recurs.", "chest pain"),
        ("Should she develop palpitations, she will call.", "palpitations"),
        ("Discussed the risk of hypoglycemia.", "hypoglycemia"),
        ("If no infection, she will start prophylaxis.", "infection"),
    ],
)
def test_it_marks_hypothetical_mentions_without_negating_them(sentence: str, target: str) -> None:
    entity = _entity(sentence, target)
    assert entity.hypothetical
    assert not entity.negated


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("Mother had diabetes.", "diabetes"),
        ("Family history of coronary artery disease.", "coronary artery disease"),
        ("Hypertension in her father.", "hypertension"),
        ("Her brother's MI was at age 45.", "MI"),
    ],
)
def test_it_marks_family_mentions(sentence: str, target: str) -> None:
    assert _entity(sentence, target).family


def test_a_relative_named_in_passing_does_not_make_the_patients_symptom_familial() -> None:
    assert not _entity("Her mother brought her in for a cough.", "cough").family


@pytest.mark.parametrize(
    ("sentence", "target"),
    [
        ("Possible pneumonia.", "pneumonia"),
        ("Rule out MI.", "MI"),
        ("CHF? Will check BNP.", "CHF"),
        ("Findings are suspicious for malignancy.", "malignancy"),
    ],
)
def test_it_marks_uncertain_mentions(sentence: str, target: str) -> None:
    entity = _entity(sentence, target)
    assert entity.uncertain
    assert not entity.negated


@pytest.mark.parametrize(
    ("sentence", "drug", "action"),
    [
        ("She was started on lisinopril 10 mg daily.", "lisinopril", "start"),
        ("Discontinued metformin because of diarrhea.", "metformin", "stop"),
        ("Increase the lisinopril to 20 mg.", "lisinopril", "increase"),
        ("Decrease glipizide to 5 mg.", "glipizide", "decrease"),
        ("Hold metformin before the CT.", "metformin", "hold"),
        ("Continue atorvastatin.", "atorvastatin", "continue"),
        ("Lisinopril was increased last month.", "lisinopril", "increase"),
        ("Amlodipine 5 mg was held for low pressures.", "amlodipine", "hold"),
    ],
)
def test_it_reads_medication_actions_from_verbs(sentence: str, drug: str, action: str) -> None:
    assert _entity(sentence, drug).action == action


def test_each_drug_takes_the_action_of_its_own_clause() -> None:
    text = "Metformin was discontinued and glipizide was started."
    assert _entity(text, "metformin").action == "stop"
    assert _entity(text, "glipizide").action == "start"
    text = "Continue metformin, increase lisinopril to 20 mg."
    assert _entity(text, "metformin").action == "continue"
    assert _entity(text, "lisinopril").action == "increase"


def test_drugs_in_a_medication_list_default_to_continue() -> None:
    text = "CURRENT MEDICATIONS:, Lisinopril 10 mg daily, metformin 500 mg b.i.d."
    assert _entity(text, "lisinopril").action == "continue"
    assert _entity(text, "metformin").action == "continue"
    assert _entity("He takes lisinopril.", "lisinopril").action is None


def test_longer_triggers_win_over_the_shorter_ones_they_contain() -> None:
    phrases = [t.text.lower() for t in find_triggers("Not ruled out; no change in dose.")]
    assert "not ruled out" in phrases
    assert "no change in" in phrases
    assert "no" not in phrases


def test_medication_action_maps_rule_categories_to_actions() -> None:
    assert medication_action("action:hold") == "hold"
    assert medication_action("negated") is None


def test_every_rule_has_a_known_category_direction_and_source() -> None:
    categories = {
        "negated",
        "historical",
        "hypothetical",
        "family",
        "uncertain",
        "pseudo",
        "terminate",
    }
    with (DATA / "context_rules.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["category"] in categories or medication_action(row["category"]), row
            assert row["direction"] in ("forward", "backward", "bidirectional", "none"), row
            assert row["source"].strip(), row
    assert len(load_rules()) > 500


def test_a_switch_stops_the_old_drug_and_starts_the_new_one() -> None:
    text = "Switched from metformin to sitagliptin 100 mg daily because of diarrhoea."
    assert _entity(text, "metformin").action == "stop"
    assert _entity(text, "sitagliptin").action == "start"


def test_a_conditional_plan_is_hypothetical_and_uncertain() -> None:
    sitagliptin = _entity(
        "If HbA1c remains above 58 mmol/mol, consider adding sitagliptin.", "sitagliptin"
    )
    assert sitagliptin.hypothetical and sitagliptin.uncertain
    assert not sitagliptin.negated


def test_a_drug_a_plan_only_considers_is_hypothetical_not_started() -> None:
    from nlp.pipeline import analyse

    (considered,) = analyse(
        "Consider hydrochlorothiazide 25 mg if home readings stay high."
    ).entities
    assert considered.normalized == "hydrochlorothiazide" and considered.hypothetical
    (started,) = analyse("Started metformin 500 mg twice daily.").entities
    assert not started.hypothetical and started.action == "start"
