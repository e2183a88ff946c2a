"""Follow-up actions: tests ordered, referrals and return visits, with due dates."""

from __future__ import annotations

import datetime as dt

import pytest

from nlp.followups import add_interval, parse_absolute_due, parse_due
from nlp.pipeline import analyse
from nlp.types import Entity

NOTE_DATE = dt.date(2026, 1, 15)


def _followups(text: str, note_date: dt.date | None = NOTE_DATE) -> list[Entity]:
    return [e for e in analyse(text, note_date=note_date).entities if e.label == "follow_up"]


@pytest.mark.parametrize(
    ("sentence", "kind", "target", "due"),
    [
        ("Follow up in 3 months.", "return_visit", None, "2026-04-15"),
        ("Return to clinic in 2 weeks.", "return_visit", None, "2026-01-29"),
        ("Recheck HbA1c in 6 weeks.", "test", "hba1c", "2026-02-26"),
        ("We will check a fasting lipid panel in one month.", "test", "lipid panel", "2026-02-15"),
        ("Refer to cardiology.", "referral", "cardiology", None),
        (
            "I have referred her to ophthalmology for a dilated eye exam.",
            "referral",
            "ophthalmology",
            None,
        ),
        ("Nephrology consult requested.", "referral", "nephrology", None),
        ("Order an echocardiogram.", "test", "echocardiography", None),
        ("Follow up with cardiology in 4 weeks.", "return_visit", "cardiology", "2026-02-12"),
        ("RTC 1 year.", "return_visit", None, "2027-01-15"),
    ],
)
def test_it_finds_follow_ups_with_kind_target_and_due_date(
    sentence: str, kind: str, target: str | None, due: str | None
) -> None:
    (follow_up,) = _followups(sentence)
    assert follow_up.attributes["kind"] == kind
    assert follow_up.attributes["target"] == target
    assert follow_up.attributes["due"] == due
    assert follow_up.normalized == (f"{kind}:{target}" if target else kind)


def test_it_keeps_the_due_phrase_when_the_note_date_is_unknown() -> None:
    (follow_up,) = _followups("Follow up in 3 months.", note_date=None)
    assert follow_up.attributes["due"] == "in 3 months"
    assert follow_up.attributes["due_phrase"] == "in 3 months"


def test_a_return_visit_on_worsening_is_a_hypothetical_follow_up() -> None:
    (follow_up,) = _followups("If symptoms worsen, return to clinic.")
    assert follow_up.attributes["kind"] == "return_visit"
    assert follow_up.hypothetical


def test_it_ignores_sentences_without_a_plan() -> None:
    assert _followups("She follows a low-salt diet and walks daily.") == []


def test_it_gives_the_earliest_due_date_of_a_range_and_keeps_the_latest() -> None:
    due = parse_due("in 4-6 weeks", NOTE_DATE)
    assert due["due"] == "2026-02-12"
    assert due["due_latest"] == "2026-02-26"


def test_it_reads_as_needed_follow_ups() -> None:
    assert parse_due("as needed", NOTE_DATE)["due"] == "as needed"


def test_it_accepts_the_note_date_as_an_iso_string() -> None:
    (follow_up,) = [
        e
        for e in analyse("Follow up in 2 weeks.", note_date="2026-03-01").entities
        if e.label == "follow_up"
    ]
    assert follow_up.attributes["due"] == "2026-03-15"


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        (dt.date(2026, 1, 31), 1, "month", dt.date(2026, 2, 28)),
        (dt.date(2024, 2, 29), 1, "year", dt.date(2025, 2, 28)),
        (dt.date(2026, 11, 15), 3, "months", dt.date(2027, 2, 15)),
        (dt.date(2026, 1, 15), 10, "days", dt.date(2026, 1, 25)),
    ],
)
def test_add_interval_clamps_month_ends(
    start: dt.date, amount: int, unit: str, expected: dt.date
) -> None:
    assert add_interval(start, amount, unit) == expected


def test_add_interval_rejects_unknown_units_and_negative_amounts() -> None:
    with pytest.raises(ValueError, match="unit"):
        add_interval(NOTE_DATE, 1, "fortnight")
    with pytest.raises(ValueError, match="amount"):
        add_interval(NOTE_DATE, -1, "days")


def test_it_names_the_clinician_of_a_return_visit() -> None:
    (follow_up,) = _followups("Follow up with Dr. Y in 7 to 10 days.")
    assert follow_up.attributes["target"] == "Dr. Y"
    assert follow_up.attributes["due"] == "2026-01-22"
    assert follow_up.attributes["due_latest"] == "2026-01-25"


@pytest.mark.parametrize(
    ("sentence", "due"),
    [
        ("Recheck HbA1c in 3 months (due 2026-04-10).", "2026-04-10"),
        ("Repeat lipid profile in 3 months (due 10 Apr 2026).", "2026-04-10"),
        ("Recheck HbA1c in 3 months (due 25/04/2026).", "2026-04-25"),
    ],
)
def test_an_explicit_due_date_beats_the_interval(sentence: str, due: str) -> None:
    (follow_up,) = _followups(sentence)
    assert follow_up.attributes["due"] == due
    assert "due_ambiguous" not in follow_up.attributes


def test_it_reads_slashed_dates_day_first_and_says_when_that_was_a_guess() -> None:
    parsed = parse_absolute_due("due 10/04/2026")
    assert parsed is not None
    assert parsed["due"] == "2026-04-10"
    assert parsed["due_ambiguous"] is True
    assert parse_absolute_due("due 31/02/2026") is None
