"""Tests of the cross-note summariser on hand-built note analyses (no pipeline needed)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from nlp.summarise import PatientSummary, summarise, summarise_note
from nlp.types import Entity, NoteAnalysis, NoteInput, Sentence, SourceRef

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def analysed(text: str, *marks: tuple[str, str, dict[str, Any]]) -> NoteAnalysis:
    """A NoteAnalysis of ``text`` with sentences split at '. ' and one entity per mark.

    Each mark is (label, surface text, fields); the entity is placed at the first occurrence of
    the surface text after the previous mark, so repeated words can be marked in order.
    """
    sentences = []
    for m in re.finditer(r"[^.]+\.?", text):
        start = m.start() + (len(m.group()) - len(m.group().lstrip()))
        if m.group().strip():
            sentences.append(Sentence(len(sentences), start, m.end(), text[start : m.end()]))
    entities = []
    cursor = 0
    for label, surface, fields in marks:
        start = text.index(surface, cursor)
        cursor = start + 1
        sentence = next(s for s in sentences if s.start <= start < s.end)
        entities.append(
            Entity(
                label=label,  # type: ignore[arg-type]
                text=surface,
                start=start,
                end=start + len(surface),
                normalized=fields.pop("normalized", surface.lower()),
                sentence_index=sentence.index,
                **fields,
            )
        )
    return NoteAnalysis(text=text, sentences=sentences, entities=entities)


def note(
    note_id: str,
    when: str,
    author: str,
    role: str,
    text: str,
    *marks: tuple[str, str, dict[str, Any]],
) -> NoteInput:
    return NoteInput(
        id=note_id,
        author=author,
        role=role,
        time=dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC),
        text=text,
        analysis=analysed(text, *marks),
    )


def med(surface: str, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    return ("medication", surface, fields)


def prob(surface: str, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    return ("problem", surface, fields)


def assert_points_at_text(ref: SourceRef, notes: list[NoteInput]) -> None:
    source = next(n for n in notes if n.id == ref.note_id)
    assert source.text[ref.start : ref.end] == ref.text
    assert ref.author == source.author and ref.role == source.role


# --- problems --------------------------------------------------------------------------------


def test_it_reports_first_and_last_mention_of_an_active_problem() -> None:
    notes = [
        note("n1", "2026-01-10", "Dr A", "GP", "Hypertension noted.", prob("Hypertension")),
        note("n2", "2026-03-10", "Dr B", "cardiology", "Known hypertension.", prob("hypertension")),
    ]
    summary = summarise(notes, now=NOW)
    [problem] = summary.active_problems
    assert problem.first_mentioned.note_id == "n1"
    assert problem.last_mentioned.note_id == "n2"
    assert problem.last_mentioned.text == "hypertension"
    for ref in problem.mentions:
        assert_points_at_text(ref, notes)


def test_it_makes_one_problem_of_one_concept_written_two_ways_with_both_sources() -> None:
    notes = [
        note(
            "n1", "2026-01-10", "Dr A", "GP", "Complains of SOB.",
            prob("SOB", normalized="dyspnoea", concept_id="HP:0002094"),
        ),
        note(
            "n2", "2026-03-10", "Dr B", "cardiology", "Breathlessness on stairs.",
            prob("Breathlessness", normalized="breathlessness", concept_id="HP:0002094"),
        ),
    ]  # fmt: skip
    [problem] = summarise(notes, now=NOW).active_problems
    assert problem.concept_id == "HP:0002094"
    assert [(m.note_id, m.text) for m in problem.mentions] == [
        ("n1", "SOB"),
        ("n2", "Breathlessness"),
    ]
    for ref in problem.mentions:
        assert_points_at_text(ref, notes)


def test_it_keeps_findings_without_a_concept_id_apart_by_name() -> None:
    notes = [
        note("n1", "2026-01-10", "Dr A", "GP", "Mild tendinosis.", prob("tendinosis")),
        note("n2", "2026-03-10", "Dr B", "GP", "Known gout.", prob("gout", concept_id="X:1")),
    ]
    assert len(summarise(notes, now=NOW).active_problems) == 2


def test_it_does_not_make_negated_family_hypothetical_or_uncertain_problems_active() -> None:
    text = "No chest pain. Mother had diabetes. If fever develops, call. Rule out pneumonia."
    notes = [
        note(
            "n1",
            "2026-02-01",
            "Dr A",
            "GP",
            text,
            prob("chest pain", negated=True),
            prob("diabetes", family=True),
            prob("fever", hypothetical=True),
            prob("pneumonia", uncertain=True),
        )
    ]
    summary = summarise(notes, now=NOW)
    assert summary.active_problems == []
    assert [n.name for n in summary.pertinent_negatives] == ["chest pain"]


def test_it_lists_a_pertinent_negative_only_when_the_latest_mention_is_negated() -> None:
    notes = [
        note(
            "n1",
            "2026-01-05",
            "Dr A",
            "GP",
            "Chest pain on exertion.",
            prob("Chest pain", normalized="chest pain"),
        ),
        note(
            "n2",
            "2026-02-05",
            "Dr A",
            "GP",
            "No chest pain now. Denies cough.",
            prob("chest pain", negated=True),
            prob("cough", negated=True),
        ),
        note(
            "n3",
            "2026-03-05",
            "Dr B",
            "ED",
            "Cough for two days.",
            prob("Cough", normalized="cough"),
        ),
    ]
    negatives = summarise(notes, now=NOW).pertinent_negatives
    assert [(n.name, n.source.note_id) for n in negatives] == [("chest pain", "n2")]


def test_it_resolves_a_problem_when_a_later_note_says_so_and_reopens_it_on_recurrence() -> None:
    notes = [
        note("n1", "2026-01-05", "Dr A", "GP", "Pneumonia on x-ray.", prob("Pneumonia")),
        note("n2", "2026-02-05", "Dr A", "GP", "The pneumonia has resolved.", prob("pneumonia")),
    ]
    summary = summarise(notes, now=NOW)
    [problem] = summary.problems
    assert problem.status == "resolved"
    assert problem.resolved_by is not None and problem.resolved_by.note_id == "n2"

    notes.append(note("n3", "2026-04-01", "Dr C", "ED", "Recurrent pneumonia.", prob("pneumonia")))
    [problem] = summarise(notes, now=NOW).problems
    assert problem.status == "active"
    assert problem.resolved_by is None


def test_it_reads_resolution_only_in_the_clause_that_mentions_the_problem() -> None:
    text = "Pneumonia has resolved; hypertension persists."
    notes = [note("n1", "2026-02-05", "Dr A", "GP", text, prob("Pneumonia"), prob("hypertension"))]
    status = {p.name: p.status for p in summarise(notes, now=NOW).problems}
    assert status == {"pneumonia": "resolved", "hypertension": "active"}


# --- medications -----------------------------------------------------------------------------


def test_it_lets_the_latest_action_win_for_a_medication() -> None:
    notes = [
        note(
            "n1",
            "2026-01-01",
            "Dr A",
            "GP",
            "Start metformin 500 mg.",
            med("metformin", action="start"),
        ),
        note("n2", "2026-02-01", "Dr A", "GP", "Stop metformin.", med("metformin", action="stop")),
    ]
    [drug] = summarise(notes, now=NOW).medications
    assert drug.status == "stopped"
    assert drug.last_action == "stop"
    assert drug.latest.note_id == "n2"


def test_it_surfaces_a_clinician_disagreement_built_only_from_source_facts() -> None:
    notes = [
        note(
            "gp1",
            "2026-05-10",
            "Dr Green",
            "GP",
            "Medications: lisinopril 10 mg daily.",
            med("lisinopril", attributes={"dose": "10 mg"}),
        ),
        note(
            "card",
            "2026-05-03",
            "Dr Heart",
            "cardiology",
            "Stopped lisinopril because of cough.",
            med("lisinopril", action="stop"),
        ),
    ]
    summary = summarise(notes, now=NOW)
    [conflict] = summary.medication_conflicts
    assert (
        conflict.message
        == "the cardiology note of 3 May 2026 records lisinopril stopped; the GP note of 10 May 2026"
        " still lists it"
    )
    assert "".join(p.text for p in conflict.parts) == conflict.message
    # every word that is not template glue comes from a linked source fact
    facts = {"cardiology", "stopped", "lisinopril", "3", "May", "2026", "GP", "10"}
    glue = {"the", "note", "of", "records", "still", "lists", "it"}
    assert set(re.findall(r"\w+", conflict.message)) <= facts | glue
    for part in conflict.parts:
        if part.text.strip(" ;") and part.text.strip(" ;") != "the":
            assert part.sources, part.text
    for ref in conflict.sources:
        assert_points_at_text(ref, notes)
    [drug] = summary.medications
    assert drug.disputed
    # the bare listing does not undo the explicit stop's place in time: latest mention wins
    assert drug.latest.note_id == "gp1"


def test_it_words_a_reported_stop_as_what_the_note_records_and_merges_repeated_stops() -> None:
    notes = [
        note(
            "c",
            "2022-01-05",
            "Dr Park",
            "cardiology",
            "Stopped lisinopril.",
            med("lisinopril", action="stop"),
        ),
        note(
            "n",
            "2022-02-16",
            "Laura Bennett",
            "nurse",
            "Letter from Dr Park: stopped the lisinopril.",
            med("lisinopril", action="stop"),
        ),
        note(
            "g",
            "2022-06-18",
            "Dr Green",
            "GP",
            "Lisinopril 10 mg daily.",
            med("Lisinopril", normalized="lisinopril", action="continue"),
        ),
    ]
    [conflict] = summarise(notes, now=NOW).medication_conflicts
    assert conflict.message.startswith("the cardiology note of 5 January 2022 records lisinopril")
    assert [ref.note_id for ref in conflict.sources] == ["c", "n", "g"]


def test_it_names_the_later_drug_as_written_when_the_names_differ() -> None:
    notes = [
        note(
            "a",
            "2026-05-03",
            "Dr H",
            "cardiology",
            "Hold Zestril.",
            med("Zestril", action="hold", normalized="lisinopril"),
        ),
        note(
            "b",
            "2026-05-10",
            "Dr G",
            "GP",
            "Continue lisinopril.",
            med("lisinopril", action="continue"),
        ),
    ]
    [conflict] = summarise(notes, now=NOW).medication_conflicts
    assert conflict.message.endswith("still lists lisinopril")
    assert "records Zestril held" in conflict.message


def test_it_sees_no_disagreement_in_a_deliberate_restart_or_the_same_authors_notes() -> None:
    notes = [
        note(
            "a", "2026-01-03", "Dr H", "cardiology", "Stop aspirin.", med("aspirin", action="stop")
        ),
        note("b", "2026-02-10", "Dr G", "GP", "Restart aspirin.", med("aspirin", action="start")),
        note(
            "c",
            "2026-03-10",
            "Dr H",
            "cardiology",
            "Stop warfarin.",
            med("warfarin", action="stop"),
        ),
        note(
            "d",
            "2026-04-10",
            "Dr H",
            "cardiology",
            "Warfarin listed.",
            med("Warfarin", normalized="warfarin"),
        ),
    ]
    summary = summarise(notes, now=NOW)
    assert summary.medication_conflicts == []
    status = {m.name: m.status for m in summary.medications}
    assert status == {"aspirin": "active", "warfarin": "active"}


def test_it_reconciles_note_medications_against_the_structured_list_both_ways() -> None:
    notes = [
        note(
            "n1",
            "2026-04-01",
            "Dr A",
            "GP",
            "On metformin and atorvastatin. Stop aspirin.",
            med("metformin"),
            med("atorvastatin"),
            med("aspirin", action="stop"),
        )
    ]
    structured = [
        {"name": "Metformin", "code": "6809"},
        {"name": "aspirin", "status": "active"},
        "amlodipine",
        {"name": "simvastatin", "status": "stopped"},
    ]
    summary = summarise(notes, structured_medications=structured, now=NOW)
    kinds = {(r.name, r.kind) for r in summary.medication_reconciliation}
    assert kinds == {
        ("atorvastatin", "in_notes_not_on_list"),
        ("amlodipine", "on_list_not_in_notes"),
        ("aspirin", "stopped_in_notes_but_on_list"),
    }
    on_list = {m.name: m.on_structured_list for m in summary.medications}
    assert on_list == {"metformin": True, "atorvastatin": False, "aspirin": True}


def test_it_matches_record_names_that_carry_strength_and_form() -> None:
    notes = [
        note(
            "n1",
            "2026-04-01",
            "Dr A",
            "GP",
            "Losartan 100 mg daily.",
            med("Losartan", normalized="losartan"),
        )
    ]
    structured = [{"name": "Losartan 100 MG Oral Tablet"}, {"name": "Hydrochlorothiazide 25 MG"}]
    summary = summarise(notes, structured_medications=structured, now=NOW)
    assert [(r.name, r.kind) for r in summary.medication_reconciliation] == [
        ("Hydrochlorothiazide 25 MG", "on_list_not_in_notes")
    ]


def test_it_does_not_reconcile_a_drug_class_as_a_drug() -> None:
    notes = [
        note(
            "n1",
            "2026-04-01",
            "Dr A",
            "GP",
            "Intolerant of ACE inhibitor.",
            med("ACE inhibitor", normalized="ace_inhibitor", attributes={"class_mention": True}),
        )
    ]
    summary = summarise(notes, structured_medications=[], now=NOW)
    assert summary.medications == []
    assert summary.medication_reconciliation == []


def test_it_lists_recent_changes_newest_first_within_the_window() -> None:
    notes = [
        note("old", "2025-01-01", "Dr A", "GP", "Start ramipril.", med("ramipril", action="start")),
        note(
            "n1",
            "2026-04-01",
            "Dr A",
            "GP",
            "Increase ramipril.",
            med("ramipril", action="increase"),
        ),
        note("n2", "2026-05-01", "Dr A", "GP", "New gout.", prob("gout")),
    ]
    changes = summarise(notes, now=NOW, recent_days=90).recent_changes
    assert [(c.name, c.change) for c in changes] == [("gout", "new"), ("ramipril", "increase")]


# --- follow-ups ------------------------------------------------------------------------------


def follow_up(surface: str, kind: str, target: str | None) -> tuple[str, str, dict[str, Any]]:
    normalized = f"{kind}:{target}" if target else kind
    return (
        "follow_up",
        surface,
        {"normalized": normalized, "attributes": {"kind": kind, "target": target, "due": None}},
    )


def test_it_keeps_a_follow_up_open_until_a_later_note_reports_the_result() -> None:
    order = note(
        "n1",
        "2026-03-01",
        "Dr A",
        "GP",
        "Repeat HbA1c in 3 months. Refer to cardiology.",
        follow_up("Repeat HbA1c in 3 months", "test", "hba1c"),
        follow_up("Refer to cardiology", "referral", "cardiology"),
    )
    summary = summarise([order], now=NOW)
    assert {f.name for f in summary.open_follow_ups} == {"test:hba1c", "referral:cardiology"}

    result = note(
        "n2",
        "2026-05-20",
        "Dr A",
        "GP",
        "HbA1c 7.1 percent today.",
        (
            "measurement",
            "HbA1c 7.1",
            {"normalized": "hba1c", "attributes": {"value": 7.1, "unit": "%"}},
        ),
    )
    visit = note("n3", "2026-05-25", "Dr H", "Cardiologist", "Seen in clinic.")
    summary = summarise([order, result, visit], now=NOW)
    assert summary.open_follow_ups == []
    closed = {f.name: f.closed_by for f in summary.follow_ups}
    assert closed["test:hba1c"] is not None and closed["test:hba1c"].note_id == "n2"
    assert closed["test:hba1c"].text == "HbA1c 7.1"
    assert closed["referral:cardiology"] is not None
    assert closed["referral:cardiology"].note_id == "n3"


def test_it_closes_an_ordered_panel_with_a_later_result_of_one_of_its_members() -> None:
    order = note(
        "n1",
        "2026-01-10",
        "Dr A",
        "GP",
        "Repeat lipid panel.",
        follow_up("Repeat lipid panel", "test", "lipid panel"),
    )
    result = note(
        "n2",
        "2026-03-10",
        "Nurse B",
        "nurse",
        "LDL 3.1 mmol/L.",
        (
            "measurement",
            "LDL 3.1",
            {"normalized": "ldl", "attributes": {"value": 120.0, "unit": "mg/dL"}},
        ),
    )
    [item] = summarise([order, result], now=NOW).follow_ups
    assert item.status == "closed"
    assert item.closed_by is not None and item.closed_by.text == "LDL 3.1"


def test_it_closes_a_return_visit_with_a_later_note_of_the_same_author_or_role_only() -> None:
    order = note(
        "n1",
        "2026-03-01",
        "Dr A",
        "GP",
        "Follow up in 2 weeks.",
        follow_up("Follow up in 2 weeks", "return_visit", None),
    )
    other = note("n2", "2026-03-10", "Dr B", "nephrology", "Kidney clinic review.")
    [item] = summarise([order, other], now=NOW).follow_ups
    assert item.status == "open"
    back = note("n3", "2026-03-15", "Dr C", "GP", "Reviewed today.")
    [item] = summarise([order, other, back], now=NOW).follow_ups
    assert item.closed_by is not None and item.closed_by.note_id == "n3"


def test_it_does_not_close_a_follow_up_with_an_earlier_note() -> None:
    earlier = note(
        "n0",
        "2026-01-01",
        "Dr A",
        "GP",
        "HbA1c 8.0.",
        ("measurement", "HbA1c 8.0", {"normalized": "hba1c", "attributes": {"value": 8.0}}),
    )
    order = note(
        "n1",
        "2026-03-01",
        "Dr A",
        "GP",
        "Repeat HbA1c.",
        follow_up("Repeat HbA1c", "test", "hba1c"),
    )
    [item] = summarise([order, earlier], now=NOW).follow_ups
    assert item.status == "open"


# --- numbers against the record ----------------------------------------------------------------


def bp_note(when: str, sbp: int, dbp: int) -> NoteInput:
    text = f"BP {sbp}/{dbp} mmHg today."
    return note(
        "bp",
        when,
        "Dr A",
        "GP",
        text,
        (
            "measurement",
            f"BP {sbp}/{dbp}",
            {"normalized": "bp", "attributes": {"value": sbp, "value2": dbp, "unit": "mmHg"}},
        ),
    )


def test_it_flags_a_note_number_that_disagrees_with_the_record_beyond_tolerance() -> None:
    observations = [
        {
            "code": "8480-6",
            "value": Decimal("128.0"),
            "unit": "mmHg",
            "time": "2026-05-01T09:00:00+00:00",
        },
        {"key": "dbp", "value": 80, "unit": "mmHg", "time": "2026-05-01T09:00:00+00:00"},
    ]
    summary = summarise(
        [bp_note("2026-05-01T10:00:00", 150, 84)], structured_observations=observations, now=NOW
    )
    [d] = summary.value_discrepancies
    assert (d.variable, d.note_value, d.record_value) == ("sbp", 150.0, 128.0)
    assert d.source.text == "BP 150/84"


def test_it_ignores_agreeing_values_and_observations_outside_the_window() -> None:
    observations = [
        {"key": "sbp", "value": 145, "unit": "mmHg", "time": "2026-05-01T09:00:00+00:00"},
        {"key": "sbp", "value": 100, "unit": "mmHg", "time": "2026-04-01T09:00:00+00:00"},
    ]
    summary = summarise(
        [bp_note("2026-05-01T10:00:00", 150, 84)], structured_observations=observations, now=NOW
    )
    assert summary.value_discrepancies == []


def test_it_compares_numbers_in_canonical_units_when_the_record_uses_si_units() -> None:
    text = "Fasting glucose 180 mg/dL."
    glucose = note(
        "g",
        "2026-05-01T10:00:00",
        "Dr A",
        "GP",
        text,
        (
            "measurement",
            "glucose 180 mg/dL",
            {"normalized": "glucose", "attributes": {"value": 180.0, "unit": "mg/dL"}},
        ),
    )
    same = [
        {"key": "glucose", "value": 10.0, "unit": "mmol/L", "time": "2026-05-01T08:00:00+00:00"}
    ]
    assert summarise([glucose], structured_observations=same, now=NOW).value_discrepancies == []
    lower = [
        {"code": "2345-7", "value": 7.0, "unit": "mmol/L", "time": "2026-05-01T08:00:00+00:00"}
    ]
    [d] = summarise([glucose], structured_observations=lower, now=NOW).value_discrepancies
    assert (d.record_value, d.record_unit) == (7.0, "mmol/L")


def test_it_does_not_compare_home_averages_or_numbers_matching_a_repeat_reading() -> None:
    text = "Home readings average 136/79 mmHg. BP today 148/87 mmHg."
    visit = note(
        "v",
        "2026-05-01T10:00:00",
        "Dr A",
        "GP",
        text,
        (
            "measurement",
            "136/79 mmHg",
            {"normalized": "bp", "attributes": {"value": 136.0, "value2": 79.0, "unit": "mmHg"}},
        ),
        (
            "measurement",
            "BP today 148/87",
            {"normalized": "bp", "attributes": {"value": 148.0, "value2": 87.0, "unit": "mmHg"}},
        ),
    )
    record = [
        {"key": "sbp", "value": 149, "unit": "mm[Hg]", "time": "2026-05-01T09:50:00+00:00"},
        {"key": "sbp", "value": 162, "unit": "mm[Hg]", "time": "2026-05-01T09:55:00+00:00"},
    ]
    assert summarise([visit], structured_observations=record, now=NOW).value_discrepancies == []


def test_it_rejects_an_observation_without_a_numeric_value() -> None:
    with pytest.raises(ValueError, match=r"structured_observations\[0\]\.value"):
        summarise(
            [bp_note("2026-05-01", 150, 84)],
            structured_observations=[{"key": "sbp", "value": "high", "time": "2026-05-01"}],
            now=NOW,
        )


# --- narrative, inputs, serialisation ----------------------------------------------------------


def test_it_builds_a_narrative_of_at_most_five_verbatim_recent_salient_sentences() -> None:
    notes = []
    for i in range(8):
        text = f"Visit {i}. Hypertension is uncontrolled on amlodipine. Weather was fine today."
        notes.append(
            note(
                f"n{i}",
                f"2026-0{1 + i % 5}-1{i}",
                "Dr A",
                "GP",
                text,
                prob("Hypertension"),
                med("amlodipine"),
            )
        )
    summary = summarise(notes, now=NOW)
    assert 1 <= len(summary.narrative) <= 5
    for item in summary.narrative:
        source = next(n for n in notes if n.id == item.source.note_id)
        assert source.text[item.source.start : item.source.end] == item.text
    # identical copied-forward sentences appear once; clinical sentences outrank small talk
    texts = [s.text for s in summary.narrative]
    assert texts.count("Hypertension is uncontrolled on amlodipine.") == 1
    scores = {s.text: s.score for s in summary.narrative}
    assert scores["Hypertension is uncontrolled on amlodipine."] == max(scores.values())
    times = [s.source.time for s in summary.narrative]
    assert times == sorted(times)


def test_the_narrative_skips_a_sentence_whose_problems_it_already_covers() -> None:
    text = "Known hypertension and diabetes. Problems: hypertension, diabetes. New gout flare."
    notes = [
        note(
            "n1",
            "2026-05-01",
            "Dr A",
            "GP",
            text,
            prob("hypertension"),
            prob("diabetes"),
            prob("hypertension"),
            prob("diabetes"),
            prob("gout"),
        )
    ]
    texts = [s.text for s in summarise(notes, now=NOW).narrative]
    assert (
        "Problems: hypertension, diabetes." not in texts
        or "Known hypertension and diabetes." not in texts
    )
    assert "New gout flare." in texts


def test_it_accepts_dicts_with_iso_times_and_stored_analysis_dicts() -> None:
    text = "Asthma is stable."
    raw = {
        "id": 7,
        "author": "Dr A",
        "role": "GP",
        "time": "2026-05-01T08:30:00Z",
        "text": text,
        "analysis": analysed(text, prob("Asthma")).to_dict(),
    }
    summary = summarise([raw], now=NOW)
    assert summary.problems[0].first_mentioned.time == "2026-05-01T08:30:00+00:00"
    assert summary.problems[0].first_mentioned.note_id == "7"


def test_it_rejects_a_note_without_a_time() -> None:
    with pytest.raises(ValueError, match=r"notes\[0\]\.time"):
        summarise([{"id": "x", "text": "hello"}], now=NOW)


def test_it_serialises_to_plain_json() -> None:
    notes = [
        note(
            "n1",
            "2026-05-01",
            "Dr A",
            "GP",
            "Stop aspirin. Diabetes.",
            med("aspirin", action="stop"),
            prob("Diabetes"),
        ),
        note(
            "n2", "2026-05-02", "Dr B", "ED", "Aspirin daily.", med("Aspirin", normalized="aspirin")
        ),
    ]
    record = [{"name": "warfarin", "authored": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}]
    summary = summarise(notes, structured_medications=record, now=NOW)
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["note_count"] == 2
    assert data["medication_conflicts"][0]["sources"][0]["note_id"] == "n1"
    assert isinstance(summary, PatientSummary)


def test_the_one_note_summary_picks_the_operation_over_the_diagnosis_line_and_narrative() -> None:
    text = (
        "Preoperative diagnosis: left inguinal hernia. Procedure: repair of left inguinal hernia. "
        "The patient was brought to the operating room and prepped and draped in the usual fashion."
    )
    analysis = analysed(text, prob("left inguinal hernia"))
    for sentence, section in zip(
        analysis.sentences, ["assessment", "procedure", "procedure"], strict=True
    ):
        sentence.section = section
    [best] = summarise_note(text, 1, analysis=analysis)
    assert best.text == "Procedure: repair of left inguinal hernia."
    assert text[best.start : best.end] == best.text
    two = summarise_note(text, 2, analysis=analysis)
    assert [s.start for s in two] == sorted(s.start for s in two)


def test_it_rejects_a_non_positive_sentence_count() -> None:
    with pytest.raises(ValueError, match="max_sentences"):
        summarise_note("x.", 0, analysis=analysed("x."))


def test_importing_the_summariser_does_not_import_django() -> None:
    code = "import sys, nlp.summarise; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_it_summarises_raw_notes_through_the_pipeline_end_to_end() -> None:
    pytest.importorskip("nlp.pipeline")
    notes = [
        {
            "id": "card-1",
            "author": "Dr Heart",
            "role": "cardiology",
            "time": "2026-05-03T10:00:00+00:00",
            "text": "ASSESSMENT:, Dry cough on ACE inhibitor.,PLAN:, Stopped lisinopril because of cough."
            " Start losartan 50 mg daily.",
        },
        {
            "id": "gp-1",
            "author": "Dr Green",
            "role": "GP",
            "time": "2026-05-10T09:00:00+00:00",
            "text": "HISTORY:, Hypertension. He denies chest pain.,MEDICATIONS:, Lisinopril 10 mg daily,"
            " losartan 50 mg daily.",
        },
    ]
    summary = summarise(
        notes,
        structured_medications=[{"name": "losartan"}, {"name": "atorvastatin"}],
        now=NOW,
    )
    messages = [c.message for c in summary.medication_conflicts]
    assert messages == [
        "the cardiology note of 3 May 2026 records lisinopril stopped; the GP note of 10 May 2026"
        " still lists it"
    ]
    for conflict in summary.medication_conflicts:
        for ref in conflict.sources:
            raw = next(n for n in notes if n["id"] == ref.note_id)
            assert raw["text"][ref.start : ref.end] == ref.text
    assert "chest pain" in {n.name for n in summary.pertinent_negatives}
    kinds = {(r.name, r.kind) for r in summary.medication_reconciliation}
    assert ("atorvastatin", "on_list_not_in_notes") in kinds
    assert ("lisinopril", "in_notes_not_on_list") in kinds
    for sentence in summary.narrative:
        raw = next(n for n in notes if n["id"] == sentence.source.note_id)
        assert raw["text"][sentence.source.start : sentence.source.end] == sentence.text


@pytest.mark.slow
def test_it_links_both_wordings_of_a_finding_in_raw_notes_to_one_problem() -> None:
    notes = [
        {
            "id": "gp-1",
            "author": "Dr Green",
            "role": "GP",
            "time": "2026-04-01T09:00:00+00:00",
            "text": "HISTORY:, Two weeks of SOB on exertion and bilateral ankle oedema.",
        },
        {
            "id": "card-1",
            "author": "Dr Heart",
            "role": "cardiology",
            "time": "2026-05-03T10:00:00+00:00",
            "text": "ASSESSMENT:, Shortness of breath and leg edema, likely heart failure.",
        },
    ]
    summary = summarise(notes, now=NOW)
    by_concept = {p.concept_id: p for p in summary.problems}
    dyspnoea = by_concept["HP:0002094"]
    assert {(m.note_id, m.text) for m in dyspnoea.mentions} == {
        ("gp-1", "SOB"),
        ("card-1", "Shortness of breath"),
    }
    oedema = by_concept["HP:0000969"]
    assert {m.note_id for m in oedema.mentions} == {"gp-1", "card-1"}
    for problem in summary.problems:
        for ref in problem.mentions:
            raw = next(n for n in notes if n["id"] == ref.note_id)
            assert raw["text"][ref.start : ref.end] == ref.text
