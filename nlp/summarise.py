"""Source-linked, extractive summary of all of one patient's notes.

Every item of a :class:`PatientSummary` points back to the note, author, role, time and character
span it came from (:class:`~nlp.types.SourceRef`). Nothing is paraphrased: narrative sentences are
verbatim note text, and the few composed messages (medication disagreements) are assembled only
from linked source facts (drug names as written, roles, dates), each piece carrying its sources.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from nlp.types import Entity, NoteAnalysis, NoteInput, Sentence, SourceRef

__all__ = [
    "DEFAULT_TOLERANCES",
    "NARRATIVE_WEIGHTS",
    "NOTE_SUMMARY_WEIGHTS",
    "FollowUpItem",
    "MedicationConflict",
    "MedicationItem",
    "MessagePart",
    "NarrativeSentence",
    "PatientSummary",
    "PertinentNegative",
    "ProblemItem",
    "RecentChange",
    "ReconciliationItem",
    "SalienceWeights",
    "Tolerance",
    "ValueDiscrepancy",
    "sentence_salience",
    "summarise",
    "summarise_note",
]

ProblemStatus = Literal["active", "resolved", "historical"]
MedicationStatus = Literal["active", "stopped", "held"]
FollowUpStatus = Literal["open", "closed"]
ReconciliationKind = Literal[
    "in_notes_not_on_list", "on_list_not_in_notes", "stopped_in_notes_but_on_list"
]

# A problem is resolved only by an explicit statement in the clause that mentions it; a later
# negated mention ("no chest pain today") is a pertinent negative, not a resolution of a diagnosis.
# "Resolving" is left out: an improving problem is still present.
_RESOLVED = re.compile(
    r"\b(resolved|resolution of|no longer|has cleared|cleared up|cured|healed|"
    r"in remission)\b",
    re.IGNORECASE,
)
_CHANGE_ACTIONS = frozenset({"start", "stop", "increase", "decrease", "hold"})
_PAST_TENSE = {
    "start": "started",
    "stop": "stopped",
    "increase": "increased",
    "decrease": "decreased",
    "hold": "held",
}
_VISIT_KINDS = frozenset(
    {"return_visit", "visit", "appointment", "referral", "consult", "follow_up", "followup"}
)


# ---------------------------------------------------------------------------------------------
# Summary items
# ---------------------------------------------------------------------------------------------


@dataclass
class ProblemItem:
    """A problem across notes: first and last affirmed mention, and what resolved it if anything.

    Mentions are grouped by the finding vocabulary's ``concept_id`` (by name when there is
    none), so every wording of one finding is one problem with all its sources.
    """

    name: str
    text: str
    status: ProblemStatus
    first_mentioned: SourceRef
    last_mentioned: SourceRef
    mentions: list[SourceRef] = field(default_factory=list)
    resolved_by: SourceRef | None = None
    code: str | None = None
    concept_id: str | None = None


@dataclass
class MedicationItem:
    """A drug reconciled across notes: the latest action wins."""

    name: str
    text: str
    status: MedicationStatus
    last_action: str
    latest: SourceRef
    mentions: list[SourceRef] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    on_structured_list: bool | None = None
    disputed: bool = False
    code: str | None = None


@dataclass
class MessagePart:
    """One piece of a composed message and the source facts it is built from."""

    text: str
    sources: list[SourceRef] = field(default_factory=list)


@dataclass
class MedicationConflict:
    """Two clinicians disagree on a drug: one stopped (or held) it, a later note still lists it."""

    name: str
    message: str
    parts: list[MessagePart]
    sources: list[SourceRef]


@dataclass
class ReconciliationItem:
    """A mismatch between the drugs in the notes and the structured medication list."""

    name: str
    kind: ReconciliationKind
    sources: list[SourceRef] = field(default_factory=list)
    record: dict[str, Any] | None = None


@dataclass
class RecentChange:
    """A medication action or a problem's onset/resolution within the recent window."""

    kind: Literal["medication", "problem"]
    name: str
    change: str
    source: SourceRef


@dataclass
class PertinentNegative:
    """A problem whose latest mention is negated ("denies chest pain").

    Earlier affirmed mentions keep the problem in the problem list: only an explicit statement
    resolves it, so the two items together show that it was present and is now denied.
    """

    name: str
    text: str
    source: SourceRef


@dataclass
class FollowUpItem:
    """Something ordered or arranged; closed when a later note reports the result or the visit."""

    name: str
    text: str
    kind: str
    due: str | None
    status: FollowUpStatus
    ordered: SourceRef
    closed_by: SourceRef | None = None


@dataclass
class ValueDiscrepancy:
    """A number in a note that disagrees with the structured record beyond the tolerance."""

    variable: str
    note_value: float
    note_unit: str | None
    record_value: float
    record_unit: str | None
    record_time: str
    tolerance: str
    source: SourceRef


@dataclass
class NarrativeSentence:
    """A verbatim note sentence chosen for salience and recency."""

    text: str
    score: float
    source: SourceRef


@dataclass
class PatientSummary:
    """Everything :func:`summarise` found, each item linked to its source notes."""

    generated_at: str
    note_count: int
    problems: list[ProblemItem] = field(default_factory=list)
    medications: list[MedicationItem] = field(default_factory=list)
    medication_conflicts: list[MedicationConflict] = field(default_factory=list)
    medication_reconciliation: list[ReconciliationItem] = field(default_factory=list)
    recent_changes: list[RecentChange] = field(default_factory=list)
    pertinent_negatives: list[PertinentNegative] = field(default_factory=list)
    follow_ups: list[FollowUpItem] = field(default_factory=list)
    value_discrepancies: list[ValueDiscrepancy] = field(default_factory=list)
    narrative: list[NarrativeSentence] = field(default_factory=list)

    @property
    def active_problems(self) -> list[ProblemItem]:
        return [p for p in self.problems if p.status == "active"]

    @property
    def open_follow_ups(self) -> list[FollowUpItem]:
        return [f for f in self.follow_ups if f.status == "open"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Tolerances for comparing note numbers with the record
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far a note's number may sit from the record before it is flagged.

    A value disagrees when ``|note - record| > max(absolute, relative * |record|)``. Only record
    observations within ``window_days`` of the note are compared.
    """

    absolute: float
    relative: float
    window_days: float
    source: str


# Windows: blood pressure and glucose change within hours, so only the same day's record readings
# are compared; HbA1c reflects about three months of glycaemia (ADA Standards of Care in
# Diabetes, section 6) and lipids move over weeks, so a note quoting a result is compared with
# record results up to 30 days away.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "sbp": Tolerance(
        10.0,
        0.0,
        1.0,
        "Muntner et al., Measurement of blood pressure in humans, AHA scientific statement, "
        "Hypertension 2019;73:e35 (single readings vary by several mmHg, hence averaging); "
        "10 mmHg is set at the upper end of that within-visit variability",
    ),
    "dbp": Tolerance(
        10.0,
        0.0,
        1.0,
        "Muntner et al., Hypertension 2019;73:e35 (as for systolic pressure)",
    ),
    "hba1c": Tolerance(
        0.0,
        0.06,
        30.0,
        "NGSP manufacturer certification criterion: results within +/-6% of the reference "
        "(ngsp.org, criteria from 2014)",
    ),
    "total_cholesterol": Tolerance(
        0.0,
        0.089,
        30.0,
        "NCEP Laboratory Standardization Panel: total error <= 8.9% (Clin Chem 1988;34:193)",
    ),
    "ldl": Tolerance(
        0.0,
        0.12,
        30.0,
        "NCEP Working Group on Lipoprotein Measurement: LDL-C total error <= 12% "
        "(Clin Chem 1995;41:1414)",
    ),
    "hdl": Tolerance(
        0.0,
        0.13,
        30.0,
        "NCEP Working Group on Lipoprotein Measurement: HDL-C total error <= 13% "
        "(Clin Chem 1995;41:1427)",
    ),
    "triglycerides": Tolerance(
        0.0,
        0.15,
        30.0,
        "NCEP Working Group on Lipoprotein Measurement: triglyceride total error <= 15% "
        "(Clin Chem 1995;41:1421)",
    ),
    "glucose": Tolerance(
        15.0,
        0.15,
        1.0,
        "ISO 15197:2013: within +/-15 mg/dL below 100 mg/dL and +/-15% above",
    ),
}

# LOINC codes for the variables above, so a structured observation may give either ``code`` or
# ``key``. Codes from loinc.org.
_LOINC_KEYS: dict[str, str] = {
    "8480-6": "sbp",
    "8462-4": "dbp",
    "4548-4": "hba1c",
    "2093-3": "total_cholesterol",
    "18262-6": "ldl",
    "13457-7": "ldl",
    "2089-1": "ldl",
    "2085-9": "hdl",
    "2571-8": "triglycerides",
    "2345-7": "glucose",
    "2339-0": "glucose",
}
_KEY_ALIASES: dict[str, str] = {
    "systolic": "sbp",
    "systolic_bp": "sbp",
    "diastolic": "dbp",
    "diastolic_bp": "dbp",
    "a1c": "hba1c",
    "cholesterol": "total_cholesterol",
    "tc": "total_cholesterol",
    "ldl_c": "ldl",
    "hdl_c": "hdl",
    "tg": "triglycerides",
}


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


@dataclass
class _Note:
    note: NoteInput
    analysis: NoteAnalysis

    def ref(self, start: int, end: int) -> SourceRef:
        return SourceRef(
            note_id=self.note.id,
            author=self.note.author,
            role=self.note.role,
            time=self.note.time.isoformat(),
            start=start,
            end=end,
            text=self.analysis.text[start:end],
        )

    def entity_ref(self, entity: Entity) -> SourceRef:
        return self.ref(entity.start, entity.end)


def _as_aware(value: dt.datetime) -> dt.datetime:
    # Naive times are taken as UTC so notes from different sources sort together.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _parse_time(value: Any, field_name: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _as_aware(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _as_aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError as exc:
            raise ValueError(f"{field_name}: not an ISO 8601 time: {value!r}") from exc
    raise ValueError(f"{field_name}: expected a datetime or ISO string, got {type(value).__name__}")


def _coerce_note(raw: NoteInput | Mapping[str, Any], position: int) -> NoteInput:
    if isinstance(raw, NoteInput):
        return NoteInput(
            id=raw.id,
            author=raw.author,
            role=raw.role,
            time=_as_aware(raw.time),
            text=raw.text,
            analysis=raw.analysis,
        )
    for key in ("id", "text", "time"):
        if key not in raw:
            raise ValueError(f"notes[{position}].{key}: missing")
    analysis = raw.get("analysis")
    if isinstance(analysis, Mapping):
        analysis = NoteAnalysis.from_dict(dict(analysis))
    return NoteInput(
        id=str(raw["id"]),
        author=str(raw.get("author", "")),
        role=str(raw.get("role", "")),
        time=_parse_time(raw["time"], f"notes[{position}].time"),
        text=str(raw["text"]),
        analysis=analysis if isinstance(analysis, NoteAnalysis) else None,
    )


def _analyse(text: str, note_date: dt.date | None) -> NoteAnalysis:
    from nlp.pipeline import analyse

    result: NoteAnalysis = analyse(text, note_date=note_date)
    return result


def _prepare(notes: Sequence[NoteInput | Mapping[str, Any]]) -> list[_Note]:
    prepared = []
    for i, raw in enumerate(notes):
        note = _coerce_note(raw, i)
        analysis = note.analysis
        if analysis is None or analysis.text != note.text:
            analysis = _analyse(note.text, note.time.date())
        prepared.append(_Note(note, analysis))
    prepared.sort(key=lambda n: (n.note.time, n.note.id))
    return prepared


def _mentions(notes: Iterable[_Note], label: str) -> Iterable[tuple[_Note, Entity]]:
    for note in notes:
        for entity in sorted(note.analysis.entities, key=lambda e: e.start):
            if entity.label == label:
                yield note, entity


_CLAUSE_BREAK = re.compile(r";|\b(?:but|however|although|whereas|while)\b", re.IGNORECASE)


def _clause_text(note: _Note, entity: Entity) -> str:
    """The clause of its sentence that holds ``entity`` ("pneumonia resolved; BP high")."""
    text = note.analysis.text
    sentence = next((s for s in note.analysis.sentences if s.start <= entity.start < s.end), None)
    lo, hi = (sentence.start, sentence.end) if sentence else (0, len(text))
    start, end = lo, hi
    for m in _CLAUSE_BREAK.finditer(text, lo, hi):
        if m.end() <= entity.start:
            start = m.end()
        elif m.start() >= entity.end:
            end = m.start()
            break
    return text[start:end]


def _sentence_text(note: _Note, entity: Entity) -> str:
    for sentence in note.analysis.sentences:
        if sentence.start <= entity.start < sentence.end:
            return sentence.text
    return note.analysis.text[max(0, entity.start - 80) : entity.end + 80]


def _key(entity: Entity) -> str:
    return (entity.normalized or entity.text).strip().lower()


def _problem_key(entity: Entity) -> str:
    # The vocabulary's concept id, so "SOB" in one note and "shortness of breath" in another
    # are one problem; findings recognised by their form alone have no id and go by name.
    return entity.concept_id or _key(entity)


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------


def _problems(notes: list[_Note]) -> list[ProblemItem]:
    items: dict[str, ProblemItem] = {}
    for note, entity in _mentions(notes, "problem"):
        # "Rule out MI" is uncertain: listing MI as an active problem would overstate the note.
        if entity.family or entity.hypothetical or entity.negated or entity.uncertain:
            continue
        ref = note.entity_ref(entity)
        key = _problem_key(entity)
        resolved = bool(_RESOLVED.search(_clause_text(note, entity)))
        item = items.get(key)
        if item is None:
            if resolved:
                # Resolution of something never recorded as present still tells us it existed.
                status: ProblemStatus = "resolved"
            else:
                status = "historical" if entity.historical else "active"
            item = ProblemItem(
                name=entity.normalized or entity.text,
                text=entity.text,
                status=status,
                first_mentioned=ref,
                last_mentioned=ref,
                mentions=[ref],
                resolved_by=ref if resolved else None,
                code=entity.code,
                concept_id=entity.concept_id,
            )
            items[key] = item
            continue
        item.mentions.append(ref)
        item.last_mentioned = ref
        item.text = entity.text
        if resolved:
            item.status = "resolved"
            item.resolved_by = ref
        elif not entity.historical:
            item.status = "active"
            item.resolved_by = None
    order = {"active": 0, "resolved": 1, "historical": 2}
    return sorted(items.values(), key=lambda p: (order[p.status], p.first_mentioned.time))


# ---------------------------------------------------------------------------------------------
# Medications
# ---------------------------------------------------------------------------------------------


@dataclass
class _MedMention:
    note: _Note
    entity: Entity
    action: str
    ref: SourceRef


def _medication_mentions(notes: list[_Note]) -> dict[str, list[_MedMention]]:
    by_drug: dict[str, list[_MedMention]] = {}
    for note, entity in _mentions(notes, "medication"):
        # "ACE inhibitor" names a class, not a drug the patient takes.
        if entity.negated or entity.family or entity.hypothetical:
            continue
        if entity.attributes.get("class_mention"):
            continue
        action = entity.action or "listed"
        mention = _MedMention(note, entity, action, note.entity_ref(entity))
        by_drug.setdefault(_key(entity), []).append(mention)
    return by_drug


def _status(action: str) -> MedicationStatus:
    if action == "stop":
        return "stopped"
    if action == "hold":
        return "held"
    return "active"


def _date_text(ref: SourceRef) -> str:
    when = dt.datetime.fromisoformat(ref.time)
    return f"{when.day} {when:%B %Y}"


def _conflict(stops: list[_MedMention], later: _MedMention) -> MedicationConflict:
    """The disagreement message, built only from the linked notes' roles, dates and drug names.

    It says what each note records ("records lisinopril stopped") rather than who decided, since
    a note may report another clinician's decision (a nurse quoting a cardiology letter).
    """
    stop = stops[0]
    name = stop.entity.normalized or stop.entity.text
    stop_date = stop.note.ref(stop.entity.start, stop.entity.start)
    later_date = later.note.ref(later.entity.start, later.entity.start)
    lists = (
        "still lists it"
        if later.entity.text.lower() == stop.entity.text.lower()
        else f"still lists {later.entity.text}"
    )
    parts = [
        MessagePart("the ", []),
        MessagePart(f"{stop.note.note.role or stop.note.note.author} note", [stop_date]),
        MessagePart(f" of {_date_text(stop.ref)}", [stop_date]),
        MessagePart(f" records {stop.entity.text} {_PAST_TENSE[stop.action]}", [stop.ref]),
        MessagePart("; the ", []),
        MessagePart(f"{later.note.note.role or later.note.note.author} note", [later_date]),
        MessagePart(f" of {_date_text(later.ref)}", [later_date]),
        MessagePart(f" {lists}", [later.ref]),
    ]
    return MedicationConflict(
        name=name,
        message="".join(p.text for p in parts),
        parts=parts,
        sources=[*(s.ref for s in stops), later.ref],
    )


def _conflicts(mentions: list[_MedMention]) -> list[MedicationConflict]:
    """A stop or hold followed by a different author's note that still lists or continues it.

    An explicit later ``start`` is a deliberate restart, not a disagreement. Several stops before
    the same listing make one conflict, worded from the earliest and citing all of them.
    """
    stops_before: dict[int, list[_MedMention]] = {}
    for i, stop in enumerate(mentions):
        if stop.action not in ("stop", "hold"):
            continue
        for j in range(i + 1, len(mentions)):
            later = mentions[j]
            if later.note.note.time <= stop.note.note.time:
                continue
            if later.action == "start":
                break
            if later.action in ("listed", "continue") and _different_author(stop, later):
                stops_before.setdefault(j, []).append(stop)
                break
    return [_conflict(stops, mentions[j]) for j, stops in sorted(stops_before.items())]


def _different_author(a: _MedMention, b: _MedMention) -> bool:
    return (a.note.note.author, a.note.note.role) != (b.note.note.author, b.note.note.role)


def _medications(
    notes: list[_Note],
) -> tuple[list[MedicationItem], list[MedicationConflict], dict[str, list[_MedMention]]]:
    by_drug = _medication_mentions(notes)
    items, conflicts = [], []
    for mentions in by_drug.values():
        latest = mentions[-1]
        drug_conflicts = _conflicts(mentions)
        conflicts.extend(drug_conflicts)
        attributes = {}
        for mention in mentions:
            attributes.update({k: v for k, v in mention.entity.attributes.items() if v})
        items.append(
            MedicationItem(
                name=latest.entity.normalized or latest.entity.text,
                text=latest.entity.text,
                status=_status(latest.action),
                last_action=latest.action,
                latest=latest.ref,
                mentions=[m.ref for m in mentions],
                attributes=attributes,
                disputed=bool(drug_conflicts),
                code=latest.entity.code,
            )
        )
    items.sort(key=lambda m: (m.status != "active", m.name))
    return items, conflicts, by_drug


def _record_name(record: Mapping[str, Any] | str) -> tuple[str, str | None]:
    """The record's drug name as given, and its code if any."""
    if isinstance(record, str):
        return record.strip(), None
    for key in ("generic", "name", "display", "medication"):
        if record.get(key):
            code = record.get("code")
            return str(record[key]).strip(), str(code) if code else None
    raise ValueError("structured_medications[].name: missing (give name, generic or display)")


def _drug_words(name: str) -> str:
    # Record names carry strength and form ("Losartan 100 MG Oral Tablet"): keep the words before
    # the first number.
    return re.split(r"\s(?=\d)", name.lower(), maxsplit=1)[0].strip()


def _same_drug(med: MedicationItem, record_name: str, record_code: str | None) -> bool:
    if record_code is not None and record_code == med.code:
        return True
    words = _drug_words(record_name)
    for name in {med.name.lower(), med.text.lower()}:
        if name == words or re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", words):
            return True
    return False


def _record_is_active(record: Mapping[str, Any] | str) -> bool:
    if isinstance(record, str):
        return True
    return str(record.get("status", "active")).lower() in ("active", "on-hold", "intended", "")


def _plain(record: Mapping[str, Any] | str) -> dict[str, Any]:
    """A JSON-safe copy of a record: non-scalar values become strings."""
    if isinstance(record, str):
        return {"name": record}
    scalar = (str, int, float, bool, type(None))
    return {str(k): v if isinstance(v, scalar) else str(v) for k, v in record.items()}


def _reconcile(
    medications: list[MedicationItem],
    structured: Sequence[Mapping[str, Any] | str],
) -> list[ReconciliationItem]:
    listed = [(_record_name(r), r) for r in structured if _record_is_active(r)]
    found: list[ReconciliationItem] = []
    matched_records: set[int] = set()
    for med in medications:
        hit = None
        for i, ((name, code), _record) in enumerate(listed):
            if _same_drug(med, name, code):
                hit = i
                break
        med.on_structured_list = hit is not None
        if hit is not None:
            matched_records.add(hit)
            if med.status == "stopped":
                record = listed[hit][1]
                found.append(
                    ReconciliationItem(
                        med.name,
                        "stopped_in_notes_but_on_list",
                        [med.latest],
                        _plain(record),
                    )
                )
        elif med.status == "active":
            found.append(ReconciliationItem(med.name, "in_notes_not_on_list", med.mentions[-1:]))
    for i, ((name, _code), record) in enumerate(listed):
        if i not in matched_records:
            found.append(
                ReconciliationItem(
                    name,
                    "on_list_not_in_notes",
                    [],
                    _plain(record),
                )
            )
    return found


# ---------------------------------------------------------------------------------------------
# Recent changes and pertinent negatives
# ---------------------------------------------------------------------------------------------


def _recent_changes(
    problems: list[ProblemItem],
    by_drug: dict[str, list[_MedMention]],
    since: dt.datetime,
) -> list[RecentChange]:
    changes = []
    for mentions in by_drug.values():
        for m in mentions:
            if m.action in _CHANGE_ACTIONS and m.note.note.time >= since:
                name = m.entity.normalized or m.entity.text
                changes.append(RecentChange("medication", name, m.action, m.ref))
    for p in problems:
        if p.status == "active" and dt.datetime.fromisoformat(p.first_mentioned.time) >= since:
            changes.append(RecentChange("problem", p.name, "new", p.first_mentioned))
        if p.resolved_by is not None and dt.datetime.fromisoformat(p.resolved_by.time) >= since:
            changes.append(RecentChange("problem", p.name, "resolved", p.resolved_by))
    changes.sort(key=lambda c: (c.source.time, c.source.start), reverse=True)
    return changes


def _pertinent_negatives(notes: list[_Note]) -> list[PertinentNegative]:
    latest: dict[str, tuple[_Note, Entity]] = {}
    for note, entity in _mentions(notes, "problem"):
        if not (entity.family or entity.hypothetical):
            latest[_problem_key(entity)] = (note, entity)
    negatives = [
        PertinentNegative(entity.normalized or entity.text, entity.text, note.entity_ref(entity))
        for note, entity in latest.values()
        if entity.negated
    ]
    negatives.sort(key=lambda n: (n.source.time, n.source.start), reverse=True)
    return negatives


# ---------------------------------------------------------------------------------------------
# Follow-ups
# ---------------------------------------------------------------------------------------------


def _target(order: Entity) -> str:
    """What was ordered: the pipeline's ``target`` attribute, else the name after ``kind:``."""
    target = order.attributes.get("target")
    if target:
        return str(target).strip().lower()
    return _key(order).rsplit(":", 1)[-1]


# A panel is reported as its members. Members from the LOINC panel definitions: 24331-1 (lipid
# panel), 24362-6 (renal function panel), 51990-0 (basic metabolic panel), 24323-8
# (comprehensive metabolic panel), 24326-1 (electrolytes panel).
_PANEL_MEMBERS: dict[str, frozenset[str]] = {
    "lipid_panel": frozenset({"total_cholesterol", "ldl", "hdl", "triglycerides"}),
    "renal_function_panel": frozenset({"creatinine", "egfr", "potassium"}),
    "basic_metabolic_panel": frozenset({"creatinine", "egfr", "potassium", "glucose"}),
    "comprehensive_metabolic_panel": frozenset({"creatinine", "egfr", "potassium", "glucose"}),
    "electrolytes_panel": frozenset({"potassium"}),
}


def _slug(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _reports(entity: Entity, target: str) -> bool:
    """Whether an entity is (a member of) the ordered test or procedure ``target``."""
    key, wanted = _slug(_key(entity)), _slug(target)
    return key == wanted or key in _PANEL_MEMBERS.get(wanted, frozenset())


def _same_specialty(a: str, b: str) -> bool:
    # "cardiology" and "cardiologist" share their stem; six letters separate the specialties.
    a, b = a.strip().lower(), b.strip().lower()
    return bool(a and b) and (a == b or (len(a) >= 6 and len(b) >= 6 and a[:6] == b[:6]))


def _closes(order: Entity, order_note: _Note, note: _Note) -> SourceRef | None:
    """The mention in ``note`` that reports the result of, or is, the ordered thing.

    A test is closed by a later affirmed mention of the same thing (a measurement or procedure
    with that name); a referral by a later note written by that specialty; a return visit by a
    later note of the same author or role, or of the named specialty.
    """
    target = _target(order)
    kind = str(order.attributes.get("kind", "")).lower()
    for entity in note.analysis.entities:
        if entity.negated or entity.hypothetical or entity.family or entity.label == "follow_up":
            continue
        if target and _reports(entity, target):
            return note.entity_ref(entity)
    if kind in _VISIT_KINDS:
        if target and any(_same_specialty(target, w) for w in (note.note.role, note.note.author)):
            return _opening(note)
        generic = target in ("", "return_visit", "follow-up", "follow up", "visit", "appointment")
        same_clinic = (note.note.author == order_note.note.author) or (
            bool(note.note.role) and note.note.role == order_note.note.role
        )
        if generic and same_clinic:
            return _opening(note)
    return None


def _opening(note: _Note) -> SourceRef:
    """The first sentence of a note, standing for the visit the note records."""
    if note.analysis.sentences:
        first = note.analysis.sentences[0]
        return note.ref(first.start, first.end)
    return note.ref(0, min(len(note.analysis.text), 200))


def _follow_ups(notes: list[_Note]) -> list[FollowUpItem]:
    items = []
    for note, entity in _mentions(notes, "follow_up"):
        if entity.negated or entity.hypothetical:
            continue
        closed_by = None
        for later in notes:
            if later.note.time > note.note.time:
                closed_by = _closes(entity, note, later)
                if closed_by is not None:
                    break
        due = entity.attributes.get("due")
        items.append(
            FollowUpItem(
                name=entity.normalized or entity.text,
                text=entity.text,
                kind=str(entity.attributes.get("kind", "")),
                due=str(due) if due else None,
                status="closed" if closed_by else "open",
                ordered=note.entity_ref(entity),
                closed_by=closed_by,
            )
        )
    return _dedupe_follow_ups(items)


def _dedupe_follow_ups(items: list[FollowUpItem]) -> list[FollowUpItem]:
    # A plan repeated in consecutive notes is one order; keep its latest statement.
    latest: dict[tuple[str, str], FollowUpItem] = {}
    for item in items:
        latest[(item.name.lower(), item.kind)] = item
    return sorted(latest.values(), key=lambda f: (f.status != "open", f.ordered.time))


# ---------------------------------------------------------------------------------------------
# Numbers in notes against the record
# ---------------------------------------------------------------------------------------------


def _variable(raw: str) -> str:
    key = raw.strip().lower().replace(" ", "_").replace("-", "_")
    return _LOINC_KEYS.get(raw.strip(), _KEY_ALIASES.get(key, key))


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def _note_values(entity: Entity) -> list[tuple[str, float, str | None]]:
    unit = entity.attributes.get("unit")
    unit_text = str(unit) if unit else None
    value = _to_float(entity.attributes.get("value"))
    value2 = _to_float(entity.attributes.get("value2"))
    key = _variable(entity.normalized)
    if value is None:
        return []
    if key in ("bp", "blood_pressure"):
        values = [("sbp", value, unit_text)]
        if value2 is not None:
            values.append(("dbp", value2, unit_text))
        return values
    return [(key, value, unit_text)]


# Home and ambulatory averages are other measurements than the office reading the record holds.
_NOT_AN_OFFICE_READING = re.compile(
    r"\b(home|ambulatory|self[- ]measured|average|averaged|mean)\b", re.IGNORECASE
)
# FHIR quantities carry UCUM codes; the note reader spells units the clinical way.
_UCUM_SPELLING = {"mm[hg]": "mmHg", "[lb_av]": "lb", "mg/dl": "mg/dL", "mmol/l": "mmol/L"}


def _canonical(key: str, value: float, unit: str | None) -> float | None:
    """``value`` in the note reader's canonical unit for ``key``, or None if not convertible.

    Conversion factors are those of ``nlp/data/unit_conversions.csv`` (each with its source).
    """
    from nlp.measurements import convert

    spelled = _UCUM_SPELLING.get((unit or "").strip().lower(), unit)
    try:
        converted, _unit = convert("bp" if key in ("sbp", "dbp") else key, value, spelled)
    except ValueError:
        return None
    return converted


@dataclass
class _Observation:
    key: str
    value: float
    unit: str | None
    time: dt.datetime


def _observations(raw: Sequence[Mapping[str, Any]]) -> list[_Observation]:
    found = []
    for i, obs in enumerate(raw):
        name = obs.get("key") or obs.get("code")
        if not name:
            raise ValueError(f"structured_observations[{i}].key: missing (give key or code)")
        value = _to_float(obs.get("value"))
        if value is None:
            raise ValueError(f"structured_observations[{i}].value: expected a number")
        if "time" not in obs:
            raise ValueError(f"structured_observations[{i}].time: missing")
        unit = obs.get("unit")
        found.append(
            _Observation(
                _variable(str(name)),
                value,
                str(unit) if unit else None,
                _parse_time(obs["time"], f"structured_observations[{i}].time"),
            )
        )
    return found


def _discrepancies(
    notes: list[_Note],
    observations: list[_Observation],
    tolerances: Mapping[str, Tolerance],
) -> list[ValueDiscrepancy]:
    found = []
    for note, entity in _mentions(notes, "measurement"):
        if entity.negated or entity.hypothetical or entity.family or entity.historical:
            continue
        if _NOT_AN_OFFICE_READING.search(_sentence_text(note, entity)):
            continue
        for key, value, unit in _note_values(entity):
            tol = tolerances.get(key)
            if tol is None:
                continue
            window = dt.timedelta(days=tol.window_days)
            candidates = [
                o for o in observations if o.key == key and abs(o.time - note.note.time) <= window
            ]
            if not candidates:
                continue
            noted = _canonical(key, value, unit)
            if noted is None:
                continue
            # Tolerances are stated in canonical units (mmHg, %, mg/dL). A number that agrees
            # with any record value in the window (a repeat reading, say) is not a disagreement.
            recorded = [(o, _canonical(key, o.value, o.unit)) for o in candidates]
            comparable = [(o, r) for o, r in recorded if r is not None]
            if not comparable or any(
                abs(noted - r) <= max(tol.absolute, tol.relative * abs(r)) for _o, r in comparable
            ):
                continue
            obs = min((o for o, _r in comparable), key=lambda o: abs(o.time - note.note.time))
            found.append(
                ValueDiscrepancy(
                    variable=key,
                    note_value=value,
                    note_unit=unit,
                    record_value=obs.value,
                    record_unit=obs.unit,
                    record_time=obs.time.isoformat(),
                    tolerance=f"abs {tol.absolute:g}, rel {tol.relative:g}: {tol.source}",
                    source=note.entity_ref(entity),
                )
            )
    return found


# ---------------------------------------------------------------------------------------------
# Sentence salience and the narrative
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SalienceWeights:
    """Weights of the sentence-salience score (see :func:`sentence_salience`).

    These are ranking heuristics, not clinical quantities: ``NOTE_SUMMARY_WEIGHTS`` were set on
    the even note ids of the MTSamples development split to pick the sentence that best states
    what a note is about; ``NARRATIVE_WEIGHTS`` favour the sections where clinicians state their
    conclusions. docs/nlp-evaluation.md describes how they were chosen and checked.
    """

    sections: Mapping[str, float]
    untitled: float
    other: float
    first_in_section: float
    early: float
    max_words: int
    length_power: float
    content: float


NOTE_SUMMARY_WEIGHTS = SalienceWeights(
    sections={
        "procedure": 0.8,
        "chief_complaint": 0.8,
        "history": 1.0,
        "exam": 1.0,
        "hospital_course": 0.5,
        "other": 0.8,
    },
    untitled=1.6,
    other=0.1,
    first_in_section=0.25,
    early=4.0,
    max_words=20,
    length_power=0.5,
    content=0.0,
)
NARRATIVE_WEIGHTS = SalienceWeights(
    sections={
        "assessment": 2.0,
        "plan": 1.6,
        "chief_complaint": 1.4,
        "history": 1.2,
        "hospital_course": 1.2,
        "procedure": 1.0,
        "labs": 0.8,
        "imaging": 0.8,
        "exam": 0.5,
        "medications": 0.5,
        "review_of_systems": 0.3,
        "past_history": 0.5,
        "past_surgical_history": 0.3,
        "social_history": 0.2,
        "family_history": 0.2,
        "allergies": 0.2,
    },
    untitled=1.0,
    other=0.6,
    first_in_section=0.2,
    early=0.2,
    max_words=35,
    length_power=1.0,
    content=1.0,
)
_ENTITY_WEIGHTS: dict[str, float] = {
    "problem": 1.0,
    "medication": 0.6,
    "procedure": 0.8,
    "follow_up": 0.6,
    "measurement": 0.3,
}


def sentence_salience(
    sentence: Sentence,
    entities: Sequence[Entity],
    *,
    first_in_section: bool,
    weights: SalienceWeights = NARRATIVE_WEIGHTS,
) -> float:
    """Salience of one sentence from its section, position, length and clinical content.

    ``score = section * (1 + first_in_section) * (1 + early / (1 + index)) * length
    * (1 + content * log1p(c) * (1 + c / words))``, where ``c`` sums the label weights of the
    affirmed entities in the sentence (negated, hypothetical or family mentions count 0.3 of
    theirs) and ``length = min(1, max_words / words) ** length_power``.

    Parameters
    ----------
    sentence : Sentence
        The sentence to score; its ``index`` is its position in the note (0-based).
    entities : sequence of Entity
        The entities whose start falls inside the sentence.
    first_in_section : bool
        Whether the sentence opens its section.
    weights : SalienceWeights
        Which weight set to use.

    Returns
    -------
    float
        A non-negative, unitless score; 0 for sentences of fewer than 2 words.
    """
    words = len(sentence.text.split())
    if words < 2:
        return 0.0
    if sentence.section is None:
        section = weights.untitled
    else:
        section = weights.sections.get(sentence.section, weights.other)
    content = 0.0
    for e in entities:
        w = _ENTITY_WEIGHTS.get(e.label, 0.3)
        content += w * 0.3 if (e.negated or e.hypothetical or e.family) else w
    clinical = 1.0 + weights.content * math.log1p(content) * (1.0 + content / words)
    length = math.pow(min(1.0, weights.max_words / words), weights.length_power)
    if words < 4:
        length *= 0.5
    position = (1.0 + weights.first_in_section * first_in_section) * (
        1.0 + weights.early / (1.0 + sentence.index)
    )
    return section * position * length * clinical


def _scored_sentences(
    analysis: NoteAnalysis, weights: SalienceWeights
) -> list[tuple[float, Sentence]]:
    by_sentence: dict[int, list[Entity]] = {}
    starts = [s.start for s in analysis.sentences]
    for e in analysis.entities:
        i = bisect.bisect_right(starts, e.start) - 1
        if i >= 0 and e.start < analysis.sentences[i].end:
            by_sentence.setdefault(i, []).append(e)
    scored = []
    previous_section: str | None = "\0"
    for i, s in enumerate(analysis.sentences):
        first = s.section != previous_section
        previous_section = s.section
        entities = by_sentence.get(i, [])
        scored.append((sentence_salience(s, entities, first_in_section=first, weights=weights), s))
    return scored


def summarise_note(
    text: str, max_sentences: int = 1, *, analysis: NoteAnalysis | None = None
) -> list[Sentence]:
    """The ``max_sentences`` most salient sentences of one note, verbatim, in note order.

    ``analysis`` may be a stored :class:`NoteAnalysis` of ``text``; otherwise the pipeline is run.
    Sentences are scored with :data:`NOTE_SUMMARY_WEIGHTS`.
    """
    if max_sentences < 1:
        raise ValueError(f"max_sentences: must be >= 1, got {max_sentences}")
    if analysis is None or analysis.text != text:
        analysis = _analyse(text, None)
    scored = [(sc, s) for sc, s in _scored_sentences(analysis, NOTE_SUMMARY_WEIGHTS) if sc > 0]
    best = sorted(scored, key=lambda pair: (-pair[0], pair[1].start))[:max_sentences]
    return sorted((s for _score, s in best), key=lambda s: s.start)


def _sentence_keys(analysis: NoteAnalysis, sentence: Sentence) -> frozenset[str]:
    """Names of the affirmed problems and drugs a sentence mentions."""
    return frozenset(
        _problem_key(e) if e.label == "problem" else _key(e)
        for e in analysis.entities
        if sentence.start <= e.start < sentence.end
        and e.label in ("problem", "medication")
        and not (e.negated or e.hypothetical or e.family)
    )


def _narrative(
    notes: list[_Note], now: dt.datetime, half_life_days: float, max_sentences: int
) -> list[NarrativeSentence]:
    candidates = []
    for note in notes:
        age_days = max(0.0, (now - note.note.time).total_seconds() / 86400.0)
        recency = 0.5 ** (age_days / half_life_days)
        for score, sentence in _scored_sentences(note.analysis, NARRATIVE_WEIGHTS):
            if score > 0:
                candidates.append((score * recency, note, sentence))
    candidates.sort(key=lambda c: -c[0])
    chosen: list[tuple[float, _Note, Sentence]] = []
    per_note: dict[str, int] = {}
    seen_text: set[str] = set()
    covered: set[str] = set()
    for score, note, sentence in candidates:
        norm = " ".join(sentence.text.lower().split())
        keys = _sentence_keys(note.analysis, sentence)
        # Copy-forward notes repeat sentences, and problem lists restate the history: a sentence
        # adds nothing if its text or all its problems and drugs are already in the narrative.
        # At most two per note keeps the narrative broad.
        if norm in seen_text or (keys and keys <= covered) or per_note.get(note.note.id, 0) >= 2:
            continue
        chosen.append((score, note, sentence))
        seen_text.add(norm)
        covered |= keys
        per_note[note.note.id] = per_note.get(note.note.id, 0) + 1
        if len(chosen) == max_sentences:
            break
    chosen.sort(key=lambda c: (c[1].note.time, c[2].start))
    return [
        NarrativeSentence(
            text=note.analysis.text[s.start : s.end],
            score=round(score, 4),
            source=note.ref(s.start, s.end),
        )
        for score, note, s in chosen
    ]


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def summarise(
    notes: Sequence[NoteInput] | Sequence[Mapping[str, Any]],
    *,
    structured_medications: Sequence[Mapping[str, Any] | str] | None = None,
    structured_observations: Sequence[Mapping[str, Any]] | None = None,
    now: dt.datetime | None = None,
    recent_days: float = 90.0,
    narrative_sentences: int = 5,
    narrative_half_life_days: float = 180.0,
    tolerances: Mapping[str, Tolerance] | None = None,
) -> PatientSummary:
    """Summarise all of one patient's notes, every item linked to its sources.

    Parameters
    ----------
    notes : sequence of NoteInput or dict
        Dicts need ``id``, ``text`` and ``time`` (datetime or ISO 8601 string) and may carry
        ``author``, ``role`` and a stored ``analysis`` (NoteAnalysis or its ``to_dict()``).
    structured_medications : sequence of dict or str, optional
        The record's medication list: names, or dicts with ``name`` (or ``generic``/``display``),
        optional ``code`` (RxNorm) and ``status`` (FHIR MedicationStatement status).
    structured_observations : sequence of dict, optional
        Record observations as dicts with ``key`` (e.g. ``sbp``) or ``code`` (LOINC), ``value``,
        ``unit`` and ``time``.
    now : datetime, optional
        The reference time for "recent" and for recency weighting; defaults to the current time.
    recent_days : float
        Width of the recent-changes window, days (> 0).
    narrative_sentences : int
        At most this many narrative sentences (1 to 5).
    narrative_half_life_days : float
        Age at which a sentence's recency weight halves, days (> 0).
    tolerances : mapping of str to Tolerance, optional
        Per-variable tolerances; defaults to :data:`DEFAULT_TOLERANCES`.

    Returns
    -------
    PatientSummary
    """
    _validate_positive("recent_days", recent_days)
    _validate_positive("narrative_half_life_days", narrative_half_life_days)
    if not 1 <= narrative_sentences <= 5:
        raise ValueError(f"narrative_sentences: must be in [1, 5], got {narrative_sentences}")
    reference = _as_aware(now) if now is not None else dt.datetime.now(dt.UTC)
    prepared = _prepare(notes)
    problems = _problems(prepared)
    medications, conflicts, by_drug = _medications(prepared)
    reconciliation = (
        _reconcile(medications, structured_medications)
        if structured_medications is not None
        else []
    )
    discrepancies = (
        _discrepancies(
            prepared,
            _observations(structured_observations),
            DEFAULT_TOLERANCES if tolerances is None else tolerances,
        )
        if structured_observations
        else []
    )
    since = reference - dt.timedelta(days=recent_days)
    return PatientSummary(
        generated_at=reference.isoformat(),
        note_count=len(prepared),
        problems=problems,
        medications=medications,
        medication_conflicts=conflicts,
        medication_reconciliation=reconciliation,
        recent_changes=_recent_changes(problems, by_drug, since),
        pertinent_negatives=_pertinent_negatives(prepared),
        follow_ups=_follow_ups(prepared),
        value_discrepancies=discrepancies,
        narrative=_narrative(prepared, reference, narrative_half_life_days, narrative_sentences),
    )


def _validate_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name}: must be > 0, got {value}")
