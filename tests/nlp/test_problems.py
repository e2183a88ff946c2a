"""Problems, symptoms and procedures from the curated lexicons, with SNOMED CT codes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlp.pipeline import analyse
from nlp.problems import load_terms
from nlp.types import Entity

DATA = Path(__file__).resolve().parents[2] / "nlp" / "data"


def _problems(text: str, label: str = "problem") -> list[Entity]:
    return [e for e in analyse(text).entities if e.label == label]


@pytest.mark.parametrize(
    ("text", "normalized", "code"),
    [
        ("History of HTN.", "hypertension", "38341003"),
        ("Known DM2 on metformin.", "type 2 diabetes mellitus", "44054006"),
        ("Type II diabetes mellitus, uncontrolled.", "type 2 diabetes mellitus", "44054006"),
        ("Type 1 diabetes since childhood.", "type 1 diabetes mellitus", "46635009"),
        ("Prediabetes noted.", "prediabetes", "714628002"),
        ("Hyperlipidemia on diet.", "hyperlipidaemia", "55822004"),
        ("Morbid obesity.", "obesity", "238136002"),
        ("CKD stage 3 and diabetic retinopathy.", "chronic kidney disease stage 3", "433144002"),
        ("Diabetic foot ulcer on the left.", "diabetic foot ulcer", "371087003"),
        ("Prior MI in 2015.", "myocardial infarction", "22298006"),
        ("CHF exacerbation.", "heart failure", "42343007"),
        ("Paroxysmal AF.", "atrial fibrillation", "49436004"),
        ("TIA last year.", "transient ischaemic attack", "266257000"),
        ("PAD with claudication.", "peripheral arterial disease", "399957001"),
        ("Complains of SOB and DOE.", "dyspnoea", "267036007"),
        ("Hypoglycemia overnight.", "hypoglycaemia", "302866003"),
    ],
)
def test_it_maps_terms_and_abbreviations_to_snomed_ct(
    text: str, normalized: str, code: str
) -> None:
    first = _problems(text)[0]
    assert first.normalized == normalized
    assert first.code == code


def test_it_prefers_the_longest_term() -> None:
    (problem,) = _problems("Diabetic nephropathy.")
    assert problem.normalized == "diabetic nephropathy"


@pytest.mark.parametrize(
    ("sentence", "not_expected"),
    [
        ("Take 2 mi walks.", "myocardial infarction"),
        ("Pad the dressing.", "peripheral arterial disease"),
        ("Af the end.", "atrial fibrillation"),
    ],
)
def test_it_matches_ambiguous_abbreviations_in_upper_case_only(
    sentence: str, not_expected: str
) -> None:
    assert not_expected not in {p.normalized for p in _problems(sentence)}
    assert not_expected in {p.normalized for p in _problems(sentence.upper())}


def test_it_finds_procedures() -> None:
    procedures = _problems(
        "Echocardiogram showed LVH; EKG and colonoscopy were normal.", label="procedure"
    )
    assert [p.normalized for p in procedures] == [
        "echocardiography",
        "electrocardiogram",
        "colonoscopy",
    ]
    assert procedures[0].code == "40701008"


def test_it_marks_past_history_and_family_history_sections() -> None:
    entities = _problems("PAST MEDICAL HISTORY:, Hypertension.,FAMILY HISTORY:, Diabetes.")
    assert entities[0].historical and not entities[0].family
    assert entities[1].family and not entities[1].historical


@pytest.mark.parametrize("filename", ["problems.csv", "procedures.csv"])
def test_every_lexicon_row_names_its_source_and_codes_are_numeric(filename: str) -> None:
    with (DATA / filename).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["term"] for r in rows}) == len(rows)
    for row in rows:
        assert row["source"].strip(), row["term"]
        assert row["snomed"] == "" or row["snomed"].isdigit(), row["term"]


def test_the_problem_lexicon_covers_the_conditions_the_twin_models() -> None:
    normalized = {t.normalized for t in load_terms("problems.csv", "category")}
    for condition in (
        "hypertension",
        "type 2 diabetes mellitus",
        "type 1 diabetes mellitus",
        "prediabetes",
        "hyperlipidaemia",
        "obesity",
        "chronic kidney disease",
        "diabetic retinopathy",
        "diabetic neuropathy",
        "diabetic nephropathy",
        "diabetic foot ulcer",
        "coronary artery disease",
        "myocardial infarction",
        "angina",
        "heart failure",
        "atrial fibrillation",
        "stroke",
        "transient ischaemic attack",
        "peripheral arterial disease",
    ):
        assert condition in normalized


@pytest.mark.parametrize(
    ("sentence", "normalized"),
    [
        ("Scan shows spondylodiscitis.", "spondylodiscitis"),
        ("No thyromegaly.", "thyromegaly"),
        ("She has Ormond disease.", "ormond disease"),
        ("History of hoarding disorder.", "hoarding disorder"),
        ("Denies polysubstance abuse.", "polysubstance abuse"),
    ],
)
def test_it_finds_findings_outside_the_vocabulary_by_their_form(
    sentence: str, normalized: str
) -> None:
    (problem,) = _problems(sentence)
    assert problem.normalized == normalized
    assert problem.code is None
    assert problem.attributes["generic_match"] is True


def test_it_does_not_take_diagnosis_or_prognosis_for_findings() -> None:
    assert _problems("The diagnosis and prognosis were discussed.") == []


def test_a_lexicon_match_wins_over_a_form_match_of_the_same_span() -> None:
    (problem,) = _problems("Known chronic kidney disease.")
    assert problem.code == "709044004"
    assert "generic_match" not in problem.attributes


def test_form_matched_phrases_keep_only_the_words_that_modify_the_head() -> None:
    (problem,) = _problems("He then developed a compartment syndrome.")
    assert problem.normalized == "compartment syndrome"
    assert _problems("The margins are free of disease.") == []
    assert _problems("Cardioplegia was given; the aponeurosis was closed.") == []
