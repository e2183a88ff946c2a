"""Problems, symptoms and procedures named in a note, from curated lexicons with SNOMED CT codes.

The lexicons live in ``data/problems.csv`` and ``data/procedures.csv`` (each row names its source).
Abbreviations that are also ordinary words ("MI", "PAD", "AF") are matched in upper case only.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

__all__ = [
    "MEDICAL_ENDINGS",
    "NOT_FINDING_WORDS",
    "LexiconTerm",
    "TermMatch",
    "TermMatcher",
    "build_term_matcher",
    "find_generic_problems",
    "find_headed_phrases",
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
    concept_id: str | None = None


@dataclass(frozen=True)
class TermMatch:
    """A lexicon term found in a note (character offsets into the note).

    ``site`` holds the anatomical words a finding took from its context ("left lower
    extremity" in "left lower extremity edema"), empty when it took none.
    """

    start: int
    end: int
    text: str
    term: LexiconTerm
    site: str = ""


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


# Words built on these endings name a disorder or finding ("arthritis", "hydronephrosis",
# "thyromegaly", "thrombocytopenia"); the lexicon cannot list them all.
MEDICAL_ENDINGS = (
    "itis", "osis", "iasis", "opathy", "omegaly", "emia", "algia", "plegia", "paresis", "penia",
    "cytosis", "uria", "rrhea", "rrhoea", "rrhage", "oma", "omas",
)  # fmt: skip
_LONG_WORD = re.compile(r"(?<![\w-])[A-Za-z]{6,}(?![\w-])")
NOT_FINDING_WORDS = frozenset(
    {
        "diagnosis", "prognosis", "anastomosis", "hemostasis", "haemostasis", "osmosis",
        "symbiosis", "diploma", "oklahoma", "academia", "nostalgia", "stroma", "aroma",
        "emphysema", "ileostomy", "hypothesis", "synthesis", "analysis", "dialysis",
        "cardioplegia", "aponeurosis", "zygoma", "diastasis", "epiphysis", "symphysis",
    }
)  # fmt: skip
# "<modifiers> disease / disorder / syndrome / abuse": keep up to three preceding content words.
_HEAD = re.compile(r"(?<=\s)(?:disease|disorder|syndrome|abuse|deficiency)(?![\w-])", re.IGNORECASE)
_MODIFIERS = re.compile(r"(?:[A-Za-z][A-Za-z'-]*\s+){1,3}$")
_NON_MODIFIERS = frozenset(
    {
        "history", "known", "significant", "denies", "denied", "positive", "negative", "patient",
        "diagnosed", "evidence", "signs", "symptoms", "suspected", "possible", "probable",
        "consistent", "likely", "secondary", "due", "underlying", "active", "prior", "previous",
        "shows", "showed", "developed", "has", "had", "have", "free", "residual", "no",
    }
)  # fmt: skip
_GENERIC = LexiconTerm(term="", normalized="", code=None, category="finding", case_sensitive=False)


def find_generic_problems(text: str) -> list[TermMatch]:
    """Findings named by a medical word ending or a "<words> disease" phrase, not in the lexicon.

    The matches carry an empty code and their lower-cased text as the normalized name; the
    pipeline lets a lexicon match of the same span win.
    """
    found = [
        TermMatch(m.start(), m.end(), m.group(0), _as_term(m.group(0)))
        for m in _LONG_WORD.finditer(text)
        if m.group(0).lower().endswith(MEDICAL_ENDINGS)
        and m.group(0).lower() not in NOT_FINDING_WORDS
    ]
    return found + find_headed_phrases(text, _HEAD)


def find_headed_phrases(
    text: str, head: re.Pattern[str], skip: frozenset[str] = frozenset()
) -> list[TermMatch]:
    """ "<modifiers> <head>" phrases: the head word with up to three content words before it.

    The walk back from the head stops at a function word (or a word in ``skip``), so "free of
    disease" gives nothing and "developed a compartment syndrome" gives "compartment syndrome".
    """
    found = []
    for m in head.finditer(text):
        window_start = max(0, m.start() - 60)
        mods = _MODIFIERS.search(text, window_start, m.start())
        start = _first_modifier(mods, skip) if mods else None
        if start is not None:
            surface = text[start : m.end()]
            found.append(TermMatch(start, m.end(), surface, _as_term(surface)))
    return found


def _first_modifier(mods: re.Match[str], skip: frozenset[str] = frozenset()) -> int | None:
    # Walk back from the head word and stop at the first function word, so "free of disease"
    # and "artery shows no disease" yield nothing and "developed a compartment syndrome" keeps
    # "compartment syndrome".
    first: int | None = None
    for word in reversed(list(re.finditer(r"[A-Za-z][A-Za-z'-]*", mods.group(0)))):
        if _is_function_word(word.group(0)) or word.group(0).lower() in skip:
            break
        first = mods.start() + word.start()
    return first


def _is_function_word(word: str) -> bool:
    lower = word.lower()
    return lower in STOP_WORDS or lower in _NON_MODIFIERS


def _as_term(surface: str) -> LexiconTerm:
    normalized = " ".join(surface.lower().split())
    return LexiconTerm(normalized, normalized, None, _GENERIC.category, False)
