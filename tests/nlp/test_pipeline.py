"""The whole pipeline: one cached load, a JSON-serialisable analysis, consistent offsets, speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.pipeline import PIPELINE_VERSION, analyse, analyse_many, load_pipeline
from nlp.types import NoteAnalysis

FIXTURES = Path(__file__).parent / "fixtures" / "pipeline"
NOTES = json.loads((FIXTURES / "mtsamples_notes.json").read_text(encoding="utf-8"))

CLINIC_NOTE = (
    "CHIEF COMPLAINT:, Diabetes follow-up.,HISTORY OF PRESENT ILLNESS:, 62-year-old man with "
    "type 2 diabetes, HTN and hyperlipidemia. He denies chest pain, polyuria or blurred vision. "
    "Home glucose readings around 180.,CURRENT MEDICATIONS:, Metformin 1000 mg b.i.d., "
    "lisinopril 20 mg daily, atorvastatin 40 mg q.h.s.,FAMILY HISTORY:, Father had an MI at 55."
    ",PHYSICAL EXAMINATION:, BP 148/92, pulse 76, weight 104 kg, BMI 34.1.,LABORATORY DATA:, "
    "HbA1c 8.4%, LDL 96 mg/dL, eGFR 58.,ASSESSMENT AND PLAN:, 1. Type 2 diabetes, not at goal. "
    "Start empagliflozin 10 mg daily. 2. Hypertension. Increase lisinopril to 40 mg daily. "
    "3. Recheck HbA1c and BMP in 3 months. 4. Refer to ophthalmology. Follow up in 3 months."
)


def test_it_builds_the_pipeline_once_per_process() -> None:
    assert load_pipeline() is load_pipeline()


def test_it_reads_a_clinic_note_end_to_end() -> None:
    analysis = analyse(CLINIC_NOTE, note_date="2026-02-01")
    by_label: dict[str, list[str]] = {}
    for e in analysis.entities:
        by_label.setdefault(e.label, []).append(e.normalized)
    assert by_label["medication"] == [
        "metformin",
        "lisinopril",
        "atorvastatin",
        "empagliflozin",
        "lisinopril",
    ]
    assert {"bp", "pulse", "weight", "bmi", "hba1c", "ldl", "egfr", "glucose"} <= set(
        by_label["measurement"]
    )
    assert "type 2 diabetes mellitus" in by_label["problem"]
    kinds = {e.attributes["kind"]: e for e in analysis.entities if e.label == "follow_up"}
    assert kinds["referral"].attributes["target"] == "ophthalmology"
    assert kinds["return_visit"].attributes["due"] == "2026-05-01"
    actions = [e.action for e in analysis.entities if e.label == "medication"]
    assert actions == ["continue", "continue", "continue", "start", "increase"]
    mi = next(e for e in analysis.entities if e.text == "MI")
    assert mi.family and mi.section == "family_history"
    negated = {e.normalized for e in analysis.entities if e.negated}
    assert negated == {"chest pain", "polyuria", "blurred vision"}


def test_every_entity_points_at_its_text_sentence_and_section() -> None:
    analysis = analyse(CLINIC_NOTE)
    assert analysis.pipeline_version == PIPELINE_VERSION
    starts = [(e.start, e.end) for e in analysis.entities]
    assert starts == sorted(starts)
    for e in analysis.entities:
        assert analysis.text[e.start : e.end] == e.text
        sentence = analysis.sentences[e.sentence_index]
        assert sentence.start <= e.start and e.end <= sentence.end
        assert e.section == sentence.section


def test_the_analysis_survives_a_json_round_trip() -> None:
    analysis = analyse(CLINIC_NOTE, note_date="2026-02-01")
    restored = NoteAnalysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
    assert restored == analysis


def test_it_reads_the_medication_list_of_a_transcribed_note() -> None:
    note = next(n for n in NOTES if n["note_id"] == "100")
    analysis = analyse(note["transcription"])
    listed = [
        e.normalized
        for e in analysis.entities
        if e.label == "medication" and e.section == "medications"
    ]
    assert listed == [
        "lansoprazole",
        "insulin regular",
        "propofol",
        "albuterol",
        "ampicillin/sulbactam",
        "methylprednisolone",
    ]
    diabetes = next(e for e in analysis.entities if e.normalized == "diabetes mellitus")
    assert diabetes.historical and diabetes.section == "past_history"


def test_analyse_many_gives_the_same_results_as_analyse() -> None:
    texts = [n["transcription"] for n in NOTES] + [CLINIC_NOTE]
    assert list(analyse_many(texts)) == [analyse(t) for t in texts]


def test_it_analyses_an_empty_note() -> None:
    analysis = analyse("")
    assert analysis.entities == [] and analysis.sentences == []


def test_it_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="text"):
        analyse(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="note_date"):
        analyse("Follow up in 2 weeks.", note_date="next Tuesday")


DEMO_NOTE = (
    "Diabetes review - 2026-01-10\nPatient: Jane Roe    Author: Dr A Khan\n\nHISTORY:\n"
    "62-year-old woman with type 2 diabetes and hypertension. No chest pain\n"
    "She reports occasional headaches.\n\nMEDICATIONS:\n- metformin 1 g twice daily\n"
    "- amlodipine 5 mg once daily\n\nEXAMINATION:\nBP 152/94. Weight 88.2 kg, BMI 31.4. "
    "No ankle oedema. Results: HbA1c 64 mmol/mol; eGFR 71.\n\nASSESSMENT:\nBP above target.\n\n"
    "PLAN:\n- Increase amlodipine to 10 mg once daily.\n"
    "- Recheck HbA1c in 3 months (due 10/04/2026).\n- Refer to ophthalmology for retinal screening.\n"
    "\nSigned: Dr A Khan\n"
)


def test_it_reads_a_line_broken_note_with_bulleted_lists() -> None:
    analysis = analyse(DEMO_NOTE)
    assert [s.name for s in analysis.sections] == [
        "history",
        "medications",
        "exam",
        "assessment",
        "plan",
    ]
    meds = [
        (e.normalized, e.action, e.attributes.get("frequency"))
        for e in analysis.entities
        if e.label == "medication"
    ]
    assert meds == [
        ("metformin", "continue", "bid"),
        ("amlodipine", "continue", "daily"),
        ("amlodipine", "increase", "daily"),
    ]
    a1c = next(e for e in analysis.entities if e.normalized == "hba1c" and e.label == "measurement")
    assert a1c.attributes["value"] == pytest.approx(8.0, abs=0.01)
    headaches = next(e for e in analysis.entities if e.normalized == "headache")
    assert not headaches.negated
    follow_ups = [e for e in analysis.entities if e.label == "follow_up"]
    assert [f.normalized for f in follow_ups] == ["test:hba1c", "referral:ophthalmology"]
    assert follow_ups[0].attributes["due"] == "2026-04-10"
