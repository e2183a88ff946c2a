"""The note-reading pipeline: one cached spaCy tokenizer plus lexicon matchers and rules.

``analyse(text)`` returns a :class:`~nlp.types.NoteAnalysis` with sections, sentences and
entities (medications, problems, measurements, procedures, follow-ups), each carrying its
assertion context. The pipeline is built once per process by :func:`load_pipeline`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import spacy
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from nlp.context import TriggerMatcher, apply_context
from nlp.followups import find_followups
from nlp.measurements import find_measurements
from nlp.medications import (
    DrugInfo,
    MedicationMatch,
    build_drug_matcher,
    find_medications,
    load_drug_lexicon,
)
from nlp.problems import TermMatch, TermMatcher, build_term_matcher
from nlp.segment import ClinicalTokenizer, segment
from nlp.types import Entity, NoteAnalysis, Section, Sentence
from nlp.vocabulary import (
    FindingMatcher,
    find_generic_findings,
    load_abbreviations,
    load_vocabulary,
    use_normalised_norms,
)

__all__ = ["PIPELINE_VERSION", "NotePipeline", "analyse", "analyse_many", "load_pipeline"]

PIPELINE_VERSION = "twinportal-nlp/1.3"
# When two mentions overlap the longer wins; on equal length, this order decides.
_PRIORITY = {"measurement": 0, "medication": 1, "procedure": 2, "problem": 3}
_HISTORY_SECTIONS = frozenset({"past_history", "past_surgical_history"})
_CLINICAL_LABELS = frozenset({"problem", "procedure"})
_BATCH = 64
FEVER_CELSIUS = 38.0
"""Body temperature (degrees Celsius) from which a recorded temperature is a fever.

38.0 °C (100.4 °F) is the threshold most clinical definitions use (Mackowiak PA, Chervenak FA,
Grünebaum A. Defining fever. Open Forum Infect Dis 2021;8(6):ofab161). A note's "temperature
of 100.7" or "Tmax 38.6" is thereby the finding fever as well as a measurement.
"""
FEVER_CONCEPT = ("fever", "386661006", "HP:0001945")  # name, SNOMED CT, vocabulary concept


@dataclass(frozen=True)
class NotePipeline:
    """Everything :func:`analyse` needs, built once: tokenizer and lexicon matchers.

    ``problems`` is any callable from a Doc to term matches: the vocabulary's
    :class:`~nlp.vocabulary.FindingMatcher`, or (to compare with it) a
    :class:`~nlp.problems.TermMatcher` over the hand-made ``problems.csv``.
    """

    nlp: Language
    drug_matcher: PhraseMatcher
    drugs_by_tokens: dict[str, DrugInfo]
    problems: Callable[[Doc], list[TermMatch]]
    procedures: TermMatcher
    triggers: TriggerMatcher
    generic_problems: Callable[[str], list[TermMatch]] = find_generic_findings


@functools.cache
def load_pipeline() -> NotePipeline:
    """Build the pipeline once per process (a few seconds: ~60k drug names, ~45k finding terms)."""
    nlp = spacy.blank("en")
    use_normalised_norms(nlp)
    nlp.tokenizer = ClinicalTokenizer(nlp.vocab)
    drug_matcher, by_tokens = build_drug_matcher(nlp, load_drug_lexicon())
    return NotePipeline(
        nlp=nlp,
        drug_matcher=drug_matcher,
        drugs_by_tokens=by_tokens,
        problems=FindingMatcher(nlp, load_vocabulary(), load_abbreviations()),
        procedures=build_term_matcher(nlp, "procedures.csv", "kind"),
        triggers=TriggerMatcher(nlp),
    )


def _as_date(value: dt.date | dt.datetime | str | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ValueError(f"note_date must be an ISO date (YYYY-MM-DD), got {value!r}") from exc


def analyse(
    text: str,
    *,
    note_date: dt.date | dt.datetime | str | None = None,
    pipeline: NotePipeline | None = None,
) -> NoteAnalysis:
    """Read one note.

    Parameters
    ----------
    text : str
        The note, with or without line breaks (flattened notes with ``,HEADER:,`` sections are
        handled).
    note_date : date, datetime or ISO string, optional
        When the note was written; follow-up due dates are computed from it.
    pipeline : NotePipeline, optional
        Another pipeline to read with (the benchmark compares problem lexicons this way); the
        process's own :func:`load_pipeline` by default.

    Returns
    -------
    NoteAnalysis
        Sections, sentences and entities in text order; JSON-serialisable via ``to_dict()``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    pipe = pipeline or load_pipeline()
    return _analyse_doc(pipe, text, pipe.nlp.make_doc(text), _as_date(note_date))


def analyse_many(
    texts: Iterable[str], *, note_dates: Iterable[dt.date | None] | None = None
) -> Iterator[NoteAnalysis]:
    """Read many notes, tokenizing them in batches; yields one analysis per text, in order."""
    pipe = load_pipeline()
    dates = iter(note_dates) if note_dates is not None else None
    tokenizer = cast(ClinicalTokenizer, pipe.nlp.tokenizer)
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == _BATCH:
            yield from _analyse_batch(pipe, tokenizer, batch, dates)
            batch = []
    yield from _analyse_batch(pipe, tokenizer, batch, dates)


def _analyse_batch(
    pipe: NotePipeline,
    tokenizer: ClinicalTokenizer,
    batch: list[str],
    dates: Iterator[dt.date | None] | None,
) -> Iterator[NoteAnalysis]:
    for text, doc in zip(batch, tokenizer.pipe(batch, batch_size=_BATCH), strict=True):
        yield _analyse_doc(pipe, text, doc, next(dates) if dates is not None else None)


def _analyse_doc(
    pipe: NotePipeline, text: str, doc: Doc, note_date: dt.date | None
) -> NoteAnalysis:
    sections, sentences = segment(text)
    sentence_ends = [s.end for s in sentences]
    candidates: list[Entity] = [
        *(
            _medication(m)
            for m in find_medications(
                doc, text, pipe.drug_matcher, pipe.drugs_by_tokens, sentence_ends
            )
        ),
        *(_term(m, "problem") for m in pipe.problems(doc)),
        *(_term(m, "procedure") for m in pipe.procedures(doc)),
        *(_term(m, "problem", generic=True) for m in pipe.generic_problems(text)),
        *(
            Entity(
                "measurement",
                m.text,
                m.start,
                m.end,
                m.key,
                m.code or None,
                attributes=m.attributes,
            )
            for m in find_measurements(text)
        ),
    ]
    entities = _resolve_overlaps(candidates)
    entities += _fevers(entities)
    entities += [
        Entity(
            "follow_up",
            f.text,
            f.start,
            f.end,
            _follow_up_name(f.kind, f.target),
            attributes=f.attributes,
        )
        for f in find_followups(text, sentences, note_date)
    ]
    entities.sort(key=lambda e: (e.start, e.end))
    _locate(entities, sentences, sections)
    apply_context(entities, text, sentences, pipe.triggers(doc))
    _apply_sections(entities)
    return NoteAnalysis(
        text=text,
        sentences=sentences,
        sections=sections,
        entities=entities,
        pipeline_version=PIPELINE_VERSION,
    )


def _fevers(entities: Iterable[Entity]) -> list[Entity]:
    """A problem ``fever`` over each recorded temperature of at least :data:`FEVER_CELSIUS`."""
    name, code, concept_id = FEVER_CONCEPT
    return [
        Entity(
            "problem",
            e.text,
            e.start,
            e.end,
            name,
            code,
            concept_id=concept_id,
            attributes={"from_measurement": True},
        )
        for e in entities
        if e.label == "measurement"
        and e.normalized == "temperature"
        and e.attributes.get("unit") == "Cel"
        and float(e.attributes.get("value", 0.0)) >= FEVER_CELSIUS
    ]


def _follow_up_name(kind: str, target: str | None) -> str:
    return f"{kind}:{target}" if target else kind


def _medication(m: MedicationMatch) -> Entity:
    info = m.info
    attributes: dict[str, Any] = {
        "drug_class": info.drug_class,
        "drug_classes": list(info.drug_classes),
        "is_brand": info.is_brand,
        "atc": info.atc,
        "drugbank_id": info.drugbank_id,
        **m.sig,
    }
    if not info.generic:
        attributes["class_mention"] = True
    normalized = info.generic or info.drug_class or m.text.lower()
    return Entity(
        "medication", m.text, m.start, m.end, normalized, info.code, attributes=attributes
    )


def _term(m: TermMatch, label: str, *, generic: bool = False) -> Entity:
    category_key = "category" if label == "problem" else "kind"
    attributes: dict[str, Any] = {category_key: m.term.category}
    if generic:
        attributes["generic_match"] = True
    if m.site:
        attributes["site"] = m.site
    return Entity(
        label,  # type: ignore[arg-type]  # only "problem" or "procedure" are passed
        m.text,
        m.start,
        m.end,
        m.term.normalized,
        m.term.code,
        concept_id=m.term.concept_id,
        attributes=attributes,
    )


def _resolve_overlaps(candidates: list[Entity]) -> list[Entity]:
    # A finding recognised only by its form ("increased lisinopril") never takes a drug's or a
    # measurement's place, whatever its length.
    exact = [(e.start, e.end) for e in candidates if e.label in ("medication", "measurement")]
    candidates = [
        e
        for e in candidates
        if not e.attributes.get("generic_match")
        or not any(e.start < end and start < e.end for start, end in exact)
    ]
    ordered = sorted(candidates, key=lambda e: (-(e.end - e.start), _PRIORITY[e.label], e.start))
    kept: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for entity in ordered:
        if any(entity.start < end and start < entity.end for start, end in taken):
            continue
        kept.append(entity)
        taken.append((entity.start, entity.end))
    return kept


def _locate(entities: list[Entity], sentences: list[Sentence], sections: list[Section]) -> None:
    sent_starts = [s.start for s in sentences]
    sec_starts = [s.start for s in sections]
    for entity in entities:
        i = bisect.bisect_right(sent_starts, entity.start) - 1
        if i >= 0 and entity.start < sentences[i].end:
            entity.sentence_index = i
            entity.section = sentences[i].section
            continue
        j = bisect.bisect_right(sec_starts, entity.start) - 1
        entity.section = sections[j].name if j >= 0 else None


def _apply_sections(entities: list[Entity]) -> None:
    for entity in entities:
        if entity.label in _CLINICAL_LABELS:
            if entity.section == "family_history":
                entity.family = True
            elif entity.section in _HISTORY_SECTIONS:
                entity.historical = True
        elif entity.label == "medication":
            if entity.section == "allergies":
                entity.attributes["allergy"] = True
                entity.action = None
            elif entity.section == "medications" and entity.action is None:
                entity.action = "continue"
