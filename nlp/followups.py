"""Follow-up actions in a note's plan: tests ordered, referrals and return visits, with due dates.

"Recheck HbA1c in 6 weeks" is a test due six weeks after the note; "refer to cardiology" a
referral; "follow up in 3 months" a return visit. Due dates are computed from an optional note
date; without one the phrase ("in 3 months") is kept.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nlp.types import Sentence

__all__ = [
    "FollowUpKind",
    "FollowUpMatch",
    "add_interval",
    "find_followups",
    "parse_absolute_due",
    "parse_due",
]

DATA_DIR = Path(__file__).parent / "data"
FollowUpKind = Literal["test", "referral", "return_visit"]

_WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "couple of": 2, "a few": 3, "few": 3, "several": 3,
}  # fmt: skip
_NUM = r"\d{1,3}|a\s+couple\s+of|couple\s+of|a\s+few|few|several|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|an?"
_UNIT = r"days?|weeks?|wks?|months?|mos?|years?|yrs?"
_DUE = re.compile(
    rf"(?P<rel>(?:in|within|after|for|about|approximately|another|\s)+)?"
    rf"(?P<n>{_NUM})(?:\s*(?:-|to|or)\s*(?P<n2>{_NUM}))?[\s-]*(?P<unit>{_UNIT})(?![a-z])"
    r"|(?P<next>next\s+(?:week|month|year|visit|appointment))"
    r"|(?P<tomorrow>tomorrow)"
    r"|(?P<prn>p\.?r\.?n\.?|as\s+needed|if\s+needed)",
    re.IGNORECASE,
)
_RETURN = re.compile(
    r"(?<![\w])(?:follow(?:ing)?[\s-]*up|followup|f/u|return(?:\s+to\s+(?:the\s+)?(?:clinic|office))?"
    r"|rtc|come\s+back|be\s+seen(?:\s+again)?|see\s+(?:her|him|them|the\s+patient|you)(?:\s+(?:again|back))?"
    r"|revisit|re-?evaluat\w*|recheck|next\s+(?:visit|appointment))(?![\w])",
    re.IGNORECASE,
)
_TEST_VERB = (
    r"(?:re-?check|repeat|check|order(?:ed)?|obtain(?:ed)?|get|draw|drawn|schedule(?:d)?|arrange(?:d)?"
    r"|request(?:ed)?|send\s+for|plan\s+(?:for|to\s+get)|will\s+(?:get|obtain|order|check)|needs?)"
)
_REFER_VERB = (
    r"(?:refer(?:red|ral|ring)?|consult(?:ation)?|send|sent)"
    r"(?:\s+(?:him|her|them|the\s+patient|patient))?(?:\s+back)?\s+(?:to|with)\s+(?:an?\s+|the\s+)?"
)
_MAX_GAP = 60
# A return visit needs a due time or a clinician, except these phrases that are one by themselves.
_EXPLICIT_RETURN = re.compile(r"return\s+to|rtc|come\s+back", re.IGNORECASE)
_DOCTOR = re.compile(r"\s*with\s+(?P<doctor>Dr\.?\s+[A-Z][A-Za-z'-]*)")
_CUES = (
    "follow", "f/u", "return", "rtc", "come back", "seen", "see ", "revisit", "evaluat",
    "check", "repeat", "order", "obtain", "get ", "draw", "schedul", "arrang", "request",
    "send", "sent", "plan", "will", "need", "refer", "consult",
)  # fmt: skip


@dataclass(frozen=True)
class FollowUpMatch:
    """One follow-up action, with character offsets into the note."""

    start: int
    end: int
    text: str
    kind: FollowUpKind
    target: str | None
    attributes: dict[str, Any]


def _terms(filename: str) -> dict[str, str]:
    with (DATA_DIR / filename).open(encoding="utf-8") as fh:
        return {row["term"]: row["normalized"] for row in csv.DictReader(fh)}


@functools.cache
def _lexicons() -> tuple[dict[str, str], dict[str, str]]:
    tests = _terms("labs.csv")
    for term, name in _terms("procedures.csv").items():
        tests.setdefault(term, name)
    return tests, _terms("specialties.csv")


def _alternation(terms: dict[str, str]) -> str:
    ordered = sorted(terms, key=len, reverse=True)
    return "|".join(r"\s+".join(re.escape(w) for w in t.split(" ")) for t in ordered)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    tests, specialties = _lexicons()
    test_names = _alternation(tests)
    spec_names = _alternation(specialties)
    test = re.compile(
        rf"(?<![\w]){_TEST_VERB}\s+(?:(?:an?|the|his|her|their|a\s+repeat|repeat|fasting|another|follow-?up)\s+)*"
        rf"(?P<target>{test_names})(?![\w])",
        re.IGNORECASE,
    )
    refer = re.compile(
        rf"(?<![\w])(?:{_REFER_VERB}(?P<target>{spec_names})(?![\w])"
        rf"|(?P<target2>{spec_names})\s+(?:referral|consult(?:ation)?|evaluation)(?![\w]))",
        re.IGNORECASE,
    )
    spec_after = re.compile(
        rf"\s*(?:with|at|in)\s+(?:the\s+)?(?P<target>{spec_names})(?![\w])", re.I
    )
    return test, refer, spec_after


def add_interval(start: dt.date, amount: int, unit: str) -> dt.date:
    """``start`` plus ``amount`` days, weeks, months or years (month ends clamp: Jan 31 + 1 month = Feb 28/29).

    Raises
    ------
    ValueError
        If ``unit`` is not a day, week, month or year unit, or ``amount`` is negative.
    """
    if amount < 0:
        raise ValueError(f"amount must be >= 0, got {amount}")
    u = unit.lower()
    if u.startswith("d"):
        return start + dt.timedelta(days=amount)
    if u.startswith("w"):
        return start + dt.timedelta(weeks=amount)
    if u.startswith("m"):
        month_index = start.month - 1 + amount
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return dt.date(year, month, day)
    if u.startswith("y"):
        year = start.year + amount
        day = min(start.day, calendar.monthrange(year, start.month)[1])
        return dt.date(year, start.month, day)
    raise ValueError(f"unit must be days, weeks, months or years, got {unit!r}")


def _number(word: str) -> int:
    key = " ".join(word.lower().split())
    return int(key) if key.isdigit() else _WORD_NUMBERS[key]


def parse_due(phrase: str, note_date: dt.date | None) -> dict[str, Any]:
    """Interpret a due phrase such as "in 3 months", "in 4-6 weeks" or "next week".

    Returns
    -------
    dict
        ``due`` (ISO date of the earliest due day when ``note_date`` is given, else the phrase),
        ``due_phrase``, and when a range was given ``due_latest``; ``due`` is ``"as needed"``
        for p.r.n. follow-ups.
    """
    m = _DUE.search(phrase)
    out: dict[str, Any] = {"due": phrase.strip(), "due_phrase": phrase.strip()}
    if m is None:
        return out
    if m.group("prn"):
        out["due"] = "as needed"
        return out
    if m.group("tomorrow"):
        amount, unit, amount2 = 1, "day", None
    elif m.group("next"):
        word = m.group("next").split()[-1].lower()
        if word in ("visit", "appointment"):
            return out
        amount, unit, amount2 = 1, word, None
    else:
        amount, unit = _number(m.group("n")), m.group("unit")
        amount2 = _number(m.group("n2")) if m.group("n2") else None
    if note_date is not None:
        out["due"] = add_interval(note_date, amount, unit).isoformat()
        if amount2 is not None:
            out["due_latest"] = add_interval(note_date, amount2, unit).isoformat()
    return out


def find_followups(
    text: str, sentences: list[Sentence], note_date: dt.date | None = None
) -> list[FollowUpMatch]:
    """Tests, referrals and return visits planned in a note.

    Parameters
    ----------
    text : str
        The note.
    sentences : list of Sentence
        Its sentences; a follow-up never spans two.
    note_date : datetime.date, optional
        The note's date, from which due dates are computed.

    Returns
    -------
    list of FollowUpMatch
        In text order; overlapping mentions keep the most specific (test or referral over a
        bare return visit).
    """
    found: list[FollowUpMatch] = []
    for sent in sentences:
        lowered = sent.text.lower()
        # Cheap substring test first: the full patterns are slow and most sentences plan nothing.
        if any(cue in lowered for cue in _CUES):
            found.extend(_in_sentence(text, sent.start, sent.end, note_date))
    return found


def _in_sentence(text: str, start: int, end: int, note_date: dt.date | None) -> list[FollowUpMatch]:
    test, refer, spec_after = _patterns()
    tests, specialties = _lexicons()
    found: list[FollowUpMatch] = []
    for m in test.finditer(text, start, end):
        target = tests.get(" ".join(m.group("target").lower().split()))
        found.append(_with_due(text, m.start(), m.end(), end, "test", target, note_date))
    for m in refer.finditer(text, start, end):
        raw = m.group("target") or m.group("target2")
        target = specialties.get(" ".join(raw.lower().split()))
        found.append(_with_due(text, m.start(), m.end(), end, "referral", target, note_date))
    for m in _RETURN.finditer(text, start, end):
        if any(f.start <= m.start() < f.end for f in found):
            continue
        tail = text[m.end() : min(end, m.end() + _MAX_GAP)]
        spec = spec_after.match(tail)
        doctor = _DOCTOR.match(tail)
        due = _DUE.search(tail)
        explicit = _EXPLICIT_RETURN.match(m.group(0)) is not None
        if due is None and spec is None and doctor is None and not explicit:
            continue
        if spec is not None:
            target = specialties.get(" ".join(spec.group("target").lower().split()))
        else:
            target = doctor.group("doctor") if doctor else None
        reach = max((e.end() for e in (spec, doctor, due) if e is not None), default=0)
        stop = m.end() + reach
        found.append(_with_due(text, m.start(), stop, end, "return_visit", target, note_date))
    return _dedupe(found)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_ABSOLUTE = re.compile(
    r"(?:due|by|on|before)\s*:?\s*(?:"
    r"(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))"
    rf"|(?P<dmy>(?P<dd>\d{{1,2}})\s+(?P<dmon>{_MONTH})\s+(?P<dyear>\d{{4}}))"
    rf"|(?P<mdy>(?P<mmon>{_MONTH})\s+(?P<md>\d{{1,2}}),?\s+(?P<myear>\d{{4}}))"
    r"|(?P<slash>(?P<s1>\d{1,2})/(?P<s2>\d{1,2})/(?P<sy>\d{4}))"
    r")",
    re.IGNORECASE,
)


def parse_absolute_due(phrase: str) -> dict[str, Any] | None:
    """An explicit due date such as "due 2026-03-12", "by 12 Mar 2026" or "due 12/03/2026".

    Returns
    -------
    dict or None
        ``due`` (ISO date) and ``due_phrase``; slashed dates are read day first, as the
        project's notes write them, and ``due_ambiguous`` is True when month first would also
        have been a valid date. None when the phrase holds no valid date.
    """
    m = _ABSOLUTE.search(phrase)
    if m is None:
        return None
    ambiguous = False
    try:
        if m.group("iso"):
            date = dt.date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
        elif m.group("dmy"):
            month = _MONTHS[m.group("dmon")[:3].lower()]
            date = dt.date(int(m.group("dyear")), month, int(m.group("dd")))
        elif m.group("mdy"):
            month = _MONTHS[m.group("mmon")[:3].lower()]
            date = dt.date(int(m.group("myear")), month, int(m.group("md")))
        else:
            first, second = int(m.group("s1")), int(m.group("s2"))
            date = dt.date(int(m.group("sy")), second, first)
            ambiguous = first <= 12 and second <= 12 and first != second
    except ValueError:
        return None
    out: dict[str, Any] = {"due": date.isoformat(), "due_phrase": m.group(0)}
    if ambiguous:
        out["due_ambiguous"] = True
    return out


def _with_due(
    text: str,
    start: int,
    stop: int,
    limit: int,
    kind: FollowUpKind,
    target: str | None,
    note_date: dt.date | None,
) -> FollowUpMatch:
    tail = text[stop : min(limit, stop + _MAX_GAP)]
    due = _DUE.search(tail)
    attributes: dict[str, Any] = {"kind": kind, "target": target, "due": None}
    if due is not None and not re.search(r"[.;]", tail[: due.start()]):
        stop = stop + due.end()
    phrase = _DUE.search(text, start, stop)
    if phrase is not None:
        attributes.update(parse_due(phrase.group(0), note_date))
    # An explicit date ("(due 12/03/2026)") beats one computed from an interval.
    after = text[stop : min(limit, stop + _MAX_GAP)]
    absolute = _ABSOLUTE.search(after)
    if absolute is not None and not re.search(r"[.;]", after[: absolute.start()]):
        explicit = parse_absolute_due(absolute.group(0))
        if explicit is not None:
            attributes.update(explicit)
            stop += absolute.end()
    return FollowUpMatch(start, stop, text[start:stop], kind, target, attributes)


def _dedupe(found: list[FollowUpMatch]) -> list[FollowUpMatch]:
    rank = {"test": 0, "referral": 0, "return_visit": 1}
    kept: list[FollowUpMatch] = []
    for f in sorted(found, key=lambda f: (rank[f.kind], f.start)):
        if not any(f.start < k.end and k.start < f.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
