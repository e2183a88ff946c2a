"""Plain, JSON-serialisable results of reading notes.

These dataclasses are the contract between the pipeline (``nlp.pipeline``), the summariser
(``nlp.summarise``) and the Django app, which stores ``to_dict()`` output as JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EntityLabel = Literal["medication", "problem", "measurement", "procedure", "follow_up"]
MedicationAction = Literal["start", "stop", "increase", "decrease", "continue", "hold"]


@dataclass
class Entity:
    """One thing a note mentions, with its context.

    ``start``/``end`` are character offsets into the analysed text. ``normalized`` is the canonical
    name (a generic drug name, a problem's preferred term, a measurement key such as ``sbp``);
    ``code`` is a SNOMED CT / RxNorm / LOINC code when one is known; ``concept_id`` identifies a
    problem's concept in the finding vocabulary (``HP:0002094``, ``DOID:10763``), the same for
    every way of writing it. ``attributes`` holds the
    label-specific details: for medications ``drug_class``, ``dose``, ``route``, ``frequency``; for
    measurements ``value``, ``unit`` (and ``value2`` for a diastolic pressure); for follow-ups
    ``kind`` and ``due`` (ISO date or a phrase).
    """

    label: EntityLabel
    text: str
    start: int
    end: int
    normalized: str
    code: str | None = None
    concept_id: str | None = None
    negated: bool = False
    historical: bool = False
    hypothetical: bool = False
    family: bool = False
    uncertain: bool = False
    action: MedicationAction | None = None
    section: str | None = None
    sentence_index: int = -1
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sentence:
    """A sentence of the analysed text, with its character span and the section it sits in."""

    index: int
    start: int
    end: int
    text: str
    section: str | None = None


@dataclass
class Section:
    """A titled part of a note (``history``, ``medications``, ``assessment``, ``plan``, ...)."""

    name: str
    title: str
    start: int
    end: int


@dataclass
class NoteAnalysis:
    """Everything the pipeline found in one note."""

    text: str
    sentences: list[Sentence] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    pipeline_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoteAnalysis:
        return cls(
            text=data["text"],
            sentences=[Sentence(**s) for s in data.get("sentences", [])],
            sections=[Section(**s) for s in data.get("sections", [])],
            entities=[Entity(**e) for e in data.get("entities", [])],
            pipeline_version=data.get("pipeline_version", ""),
        )


@dataclass
class NoteInput:
    """One note handed to the summariser: who wrote it, when, and its text.

    ``analysis`` may carry a stored :class:`NoteAnalysis` so the summariser need not re-run the
    pipeline.
    """

    id: str
    author: str
    role: str
    time: dt.datetime
    text: str
    analysis: NoteAnalysis | None = None


@dataclass
class SourceRef:
    """Where a summary statement comes from: note, author, time and character span."""

    note_id: str
    author: str
    role: str
    time: str
    start: int
    end: int
    text: str
