"""Sections and sentences of flattened and line-broken clinical notes."""

from __future__ import annotations

import pytest

from nlp.segment import ClinicalTokenizer, find_headers, normalise_section, segment, split_sentences

FLAT_NOTE = (
    "SUBJECTIVE:,  This 23-year-old white female presents with allergies.  She was seen by Dr. X "
    "last week.,MEDICATIONS: , Lisinopril 10 mg b.i.d. She also takes aspirin q.d.,ALLERGIES: , "
    "She has no known medicine allergies.,OBJECTIVE:,Vitals:  Weight was 130 pounds and blood "
    "pressure 124/78.,HEENT:  Her throat was mildly erythematous.,Neck:  Supple.,ASSESSMENT:,  "
    "Allergic rhinitis.,PLAN:,1.  She will try Zyrtec.  HbA1c was 8.2%.,2.  Nasonex two sprays."
)


def _sentences(text: str) -> list[str]:
    return [s.text for s in segment(text)[1]]


@pytest.mark.parametrize(
    ("title", "section"),
    [
        ("CURRENT MEDICATIONS", "medications"),
        ("DISCHARGE MEDICATIONS", "medications"),
        ("MEDS", "medications"),
        ("Medications", "medications"),
        ("MEDICATION ALLERGIES", "allergies"),
        ("PAST MEDICAL HISTORY", "past_history"),
        ("PMH", "past_history"),
        ("FAMILY HISTORY", "family_history"),
        ("SOCIAL HISTORY", "social_history"),
        ("REVIEW OF SYSTEMS", "review_of_systems"),
        ("PHYSICAL EXAMINATION", "exam"),
        ("VITAL SIGNS", "exam"),
        ("IMPRESSION", "assessment"),
        ("ASSESSMENT AND PLAN", "assessment"),
        ("PLAN", "plan"),
        ("HISTORY OF PRESENT ILLNESS", "history"),
        ("CHIEF COMPLAINT", "chief_complaint"),
        ("HEENT", "exam"),
    ],
)
def test_it_normalises_header_variants_to_canonical_sections(title: str, section: str) -> None:
    assert normalise_section(title) == section


def test_it_returns_none_for_a_title_it_does_not_know() -> None:
    assert normalise_section("BRADY PARAMETER SETTINGS") is None


def test_it_finds_inline_comma_headers_of_flattened_notes() -> None:
    sections, _ = segment(FLAT_NOTE)
    names = [s.name for s in sections]
    assert names[:4] == ["history", "medications", "allergies", "exam"]
    assert names[-2:] == ["assessment", "plan"]
    medications = sections[1]
    assert medications.title == "MEDICATIONS"
    assert FLAT_NOTE[medications.start :].startswith("MEDICATIONS")


def test_it_keeps_body_system_subheaders_inside_the_exam() -> None:
    sections, _ = segment(FLAT_NOTE)
    titles = {s.title: s.name for s in sections}
    assert titles["Vitals"] == "exam"
    assert titles["Neck"] == "exam"


def test_it_does_not_split_after_titles_dosing_abbreviations_or_decimals() -> None:
    sentences = _sentences(FLAT_NOTE)
    assert "She was seen by Dr. X last week." in sentences
    assert "HbA1c was 8.2%." in sentences
    assert "Weight was 130 pounds and blood pressure 124/78." in sentences


def test_it_splits_after_a_dosing_abbreviation_when_a_new_sentence_starts() -> None:
    sentences = _sentences(FLAT_NOTE)
    assert "Lisinopril 10 mg b.i.d." in sentences
    assert "She also takes aspirin q.d." in sentences


def test_it_keeps_list_markers_with_their_item() -> None:
    sentences = _sentences(FLAT_NOTE)
    assert "1.  She will try Zyrtec." in sentences
    assert "2.  Nasonex two sprays." in sentences


def test_it_excludes_header_titles_from_sentences_and_tags_each_sentence_with_its_section() -> None:
    _, sentences = segment(FLAT_NOTE)
    assert not any(s.text.startswith(("MEDICATIONS", "PLAN:")) for s in sentences)
    by_text = {s.text: s.section for s in sentences}
    assert by_text["She has no known medicine allergies."] == "allergies"
    assert by_text["Allergic rhinitis."] == "assessment"


def test_it_splits_sentences_that_the_flattening_joined_with_a_comma() -> None:
    text = "No stenosis is present.,There is calcification of the aorta."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "No stenosis is present.",
        "There is calcification of the aorta.",
    ]


def test_it_reads_headers_and_bullets_of_notes_with_line_breaks() -> None:
    text = "HPI: Doing well.\n\nMedications:\n- lisinopril 10 mg daily\n- metformin 500 mg bid\nASSESSMENT AND PLAN\n1. HTN."
    sections, sentences = segment(text)
    assert [s.name for s in sections] == ["history", "medications", "assessment"]
    assert [s.text for s in sentences if s.section == "medications"] == [
        "- lisinopril 10 mg daily",
        "- metformin 500 mg bid",
    ]


def test_it_offsets_every_sentence_into_the_original_text() -> None:
    _, sentences = segment(FLAT_NOTE)
    for i, s in enumerate(sentences):
        assert FLAT_NOTE[s.start : s.end] == s.text
        assert s.index == i


def test_it_does_not_take_a_time_or_a_ratio_for_a_header() -> None:
    headers = find_headers("Seen at 10:30 today. Ratio 2:1 noted.")
    assert headers == []


def test_the_tokenizer_reproduces_the_text_and_splits_slashes_and_hyphens() -> None:
    import spacy

    nlp = spacy.blank("en")
    tokenizer = ClinicalTokenizer(nlp.vocab)
    text = "Lisinopril/HCTZ  20-25 mg b.i.d., amoxicillin-clavulanate 8.2%."
    doc = tokenizer(text)
    assert doc.text == text
    words = [t.text for t in doc]
    assert words[:3] == ["Lisinopril", "/", "HCTZ"]
    assert "b.i.d." in words
    assert "8.2" in words
    assert "amoxicillin" in words and "clavulanate" in words


def test_a_line_break_before_a_capital_ends_a_sentence_without_punctuation() -> None:
    text = "HISTORY:\nNo chest pain\nShe reports headaches,\nworse in the morning."
    assert _sentences(text) == ["No chest pain", "She reports headaches,\nworse in the morning."]
