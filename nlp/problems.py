"""Problems, symptoms and procedures named in a note, from curated lexicons with SNOMED CT codes.

The lexicons live in ``data/problems.csv`` and ``data/procedures.csv`` (each row names its source).
Abbreviations that are also ordinary words ("MI", "PAD", "AF") are matched in upper case only.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

__all__ = [
    "LexiconTerm",
    "TermMatch",
    "TermMatcher",
    "build_term_matcher",
    "load_terms",
]

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class LexiconTerm:
    """One row of a term lexicon: the surface form and what it normalises to."""

    term: str
    normalized: str
    code: str | None
    category: str
    case_sensitive: bool


@dataclass(frozen=True)
class TermMatch:
    """A lexicon term found in a note (character offsets into the note)."""

    start: int
    end: int
    text: str
    term: LexiconTerm


@functools.cache
def load_terms(filename: str, category_column: str = "category") -> tuple[LexiconTerm, ...]:
    """Read a term lexicon from ``nlp/data``.

    Parameters
    ----------
    filename : str
        ``"problems.csv"`` or ``"procedures.csv"``.
    category_column : str
        Column holding the term's category (``category`` for problems, ``kind`` for procedures).
    """
    with (DATA_DIR / filename).open(encoding="utf-8") as fh:
        return tuple(
            LexiconTerm(
                term=row["term"],
                normalized=row["normalized"],
                code=row.get("snomed") or None,
                category=row[category_column],
                case_sensitive=row.get("case_sensitive", "0") == "1",
            )
            for row in csv.DictReader(fh)
        )


class TermMatcher:
    """Two PhraseMatchers over a lexicon: case-insensitive terms and upper-case abbreviations."""

    def __init__(self, nlp: Language, terms: tuple[LexiconTerm, ...]) -> None:
        self._lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self._by_lower: dict[str, LexiconTerm] = {}
        self._by_exact: dict[str, LexiconTerm] = {}
        for term in terms:
            if term.case_sensitive:
                doc = nlp.make_doc(term.term.upper())
                self._exact.add("TERM", [doc])
                self._by_exact[_key(doc, lower=False)] = term
            else:
                doc = nlp.make_doc(term.term)
                self._lower.add("TERM", [doc])
                self._by_lower[_key(doc, lower=True)] = term

    def __call__(self, doc: Doc) -> list[TermMatch]:
        """Longest non-overlapping lexicon matches in ``doc``, in text order."""
        spans = [Span(doc, s, e, label="L") for _, s, e in self._lower(doc)]
        spans += [Span(doc, s, e, label="E") for _, s, e in self._exact(doc)]
        found: list[TermMatch] = []
        for span in filter_spans(spans):
            if span.label_ == "E":
                term = self._by_exact.get(_key(span, lower=False))
            else:
                term = self._by_lower.get(_key(span, lower=True))
            if term is not None:
                found.append(TermMatch(span.start_char, span.end_char, span.text, term))
        return found


def _key(tokens: Doc | Span, *, lower: bool) -> str:
    return " ".join(t.lower_ if lower else t.text for t in tokens)


def build_term_matcher(nlp: Language, filename: str, category_column: str) -> TermMatcher:
    """A :class:`TermMatcher` over one lexicon file of ``nlp/data``."""
    return TermMatcher(nlp, load_terms(filename, category_column))
