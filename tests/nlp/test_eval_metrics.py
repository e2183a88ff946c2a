"""Tests of the metric functions in bench/nlp_eval.py (ROUGE-L, P/R/F1, drug matching, NegEx)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.nlp_eval import (
    GoldSection,
    covering_entity,
    drug_components,
    lcs_length,
    load_medication_gold,
    load_negation_gold,
    names_match,
    negex_negated,
    prf,
    rouge_l,
    rouge_tokens,
    score_section,
)

GOLD = Path(__file__).resolve().parents[2] / "bench" / "data" / "nlp_gold"


def test_the_lcs_of_the_textbook_example_has_length_four() -> None:
    # Cormen et al., Introduction to Algorithms, section 15.4: ABCBDAB vs BDCABA -> BCBA.
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length(list("BDCABA"), list("ABCBDAB")) == 4
    assert lcs_length([], list("abc")) == 0


def test_rouge_l_counts_the_longest_common_subsequence_of_words() -> None:
    # LCS by hand: "the quick brown ... jumps ... the" = 5 words; 8 candidate, 9 reference.
    score = rouge_l(
        "The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog"
    )
    assert score.precision == pytest.approx(5 / 8)
    assert score.recall == pytest.approx(5 / 9)
    assert score.f1 == pytest.approx(2 * (5 / 8) * (5 / 9) / (5 / 8 + 5 / 9))


def test_rouge_l_ignores_case_and_punctuation_and_scores_identity_one() -> None:
    assert rouge_tokens("Left-knee PAIN, 3/10.") == ["left", "knee", "pain", "3", "10"]
    assert rouge_l("Left knee pain.", "left knee pain").f1 == pytest.approx(1.0)
    assert rouge_l("cat", "dog").f1 == 0.0
    assert rouge_l("", "dog").f1 == 0.0


def test_rouge_l_rewards_order_not_just_overlap() -> None:
    same_order = rouge_l("a b c d", "a b c d e f").f1
    reversed_order = rouge_l("d c b a", "a b c d e f").f1
    assert same_order > reversed_order


def test_prf_computes_precision_recall_and_f1_from_counts() -> None:
    score = prf(tp=8, fp=2, fn=4)
    assert score.precision == pytest.approx(0.8)
    assert score.recall == pytest.approx(8 / 12)
    assert score.f1 == pytest.approx(2 * 0.8 * (8 / 12) / (0.8 + 8 / 12))
    assert prf(0, 0, 0).f1 == 0.0


def test_drug_names_match_on_ingredients_salts_and_release_forms() -> None:
    assert drug_components("Hydrocodone/Acetaminophen") == {"hydrocodone", "acetaminophen"}
    assert drug_components("metoprolol succinate ER") == {"metoprolol"}
    assert names_match("acetaminophen", "hydrocodone/acetaminophen")
    assert names_match("metoprolol tartrate", "metoprolol")
    assert names_match("insulin", "insulin glargine")
    assert not names_match("aspirin", "warfarin")
    assert not names_match("insulin", "inositol")


def test_a_section_counts_distinct_drugs_and_ignores_optional_items() -> None:
    section = GoldSection(
        "1", 0, 100, required=["metoprolol", "aspirin", "aspirin"], optional=["multivitamin"]
    )
    score = score_section(
        ["Metoprolol succinate", "multivitamin", "ibuprofen", "ibuprofen"], section
    )
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)
    assert score.missed == ["aspirin"]
    assert score.false_positives == ["ibuprofen"]


@pytest.mark.parametrize(
    ("sentence", "target", "negated"),
    [
        ("No fever or chills.", "chills", True),
        ("Fever without chills.", "Fever", False),
        ("He denies chest pain but reports cough.", "cough", False),
        ("He denies chest pain but reports cough.", "chest pain", True),
        ("No change in her chest pain.", "chest pain", False),
        ("Pneumonia was ruled out.", "Pneumonia", True),
    ],
)
def test_the_negex_baseline_handles_scope_and_pseudo_triggers(
    sentence: str, target: str, negated: bool
) -> None:
    start = sentence.index(target)
    assert negex_negated(sentence, start, start + len(target)) is negated


def test_the_covering_entity_is_the_one_overlapping_the_target_most() -> None:
    entities = [SimpleNamespace(start=0, end=5), SimpleNamespace(start=6, end=16)]
    assert covering_entity(entities, 7, 12) is entities[1]
    assert covering_entity(entities, 20, 25) is None


def test_the_gold_files_are_consistent_and_large_enough() -> None:
    sections = load_medication_gold(GOLD)
    assert len(sections) == 100
    assert sum(len(s.required) for s in sections) > 400
    targets = load_negation_gold(GOLD)
    note_targets = [t for t in targets if t.source == "mtsamples"]
    assert len(note_targets) >= 200
    assert {t.negated for t in note_targets} == {True, False}
    assert sum(t.source == "heldout" for t in targets) >= 90
    for name in ("negation.csv", "negation_heldout.csv"):
        with (GOLD / name).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                offset = int(row["sent_start"])
                span = row["sentence"][int(row["t_start"]) - offset : int(row["t_end"]) - offset]
                assert span == row["target"], row["id"]


def test_drug_names_match_across_inn_usan_and_lexicon_synonyms() -> None:
    assert names_match("thyroxine", "levothyroxine")
    assert names_match("ergocalciferol", "vitamin d")
    assert names_match("clavulanic acid", "amoxicillin/clavulanate")
    assert names_match("estrogen", "conjugated estrogens")
    assert not names_match("thyroxine", "liothyronine")


def test_the_cohort_reader_gives_notes_with_roles_medications_and_readings() -> None:
    import datetime as dt

    generator = pytest.importorskip("patients.cohort.generator")
    from bench.nlp_eval import cohort_patient_inputs

    bundle = generator.generate_patient(3, seed=0, today=dt.date(2026, 1, 1), years=2)
    inputs = cohort_patient_inputs(bundle)
    assert inputs["notes"]
    assert all(n["role"] and n["text"] and n["time"] for n in inputs["notes"])
    assert {o["code"] for o in inputs["structured_observations"]} >= {"8480-6", "8462-4"}
