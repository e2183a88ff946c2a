"""Section detection and sentence segmentation for clinical notes.

Notes arrive either with line breaks or flattened, with inline headers written as ``,HEADER:,``;
both forms are split into titled sections and then into sentences without a statistical model.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spacy.tokens import Doc
from spacy.vocab import Vocab

from nlp.types import Section, Sentence

__all__ = [
    "ClinicalTokenizer",
    "SectionRule",
    "find_headers",
    "normalise_section",
    "segment",
    "split_sentences",
]

# A header is a short title ending in a colon, at the start of the text, after a comma, a line
# break or a sentence end. Flattened notes sometimes write the colon after a comma (``DISPOSITION,:``).
_HEADER = re.compile(
    r"(?:^|(?<=[,\n.;]))[ \t]*(?P<title>[A-Z][A-Za-z0-9/&()'\- ]{0,60}?)[ \t]*,?:(?!\d)[ \t]*,?"
)
# An all-capitals line without a colon is also a header when the note has line breaks.
_LINE_HEADER = re.compile(r"(?m)^[ \t]*(?P<title>[A-Z][A-Z0-9/&()'\- ]{2,60}?)[ \t]*$")
DATA_DIR = Path(__file__).parent / "data"
_MAX_HEADER_WORDS = 7
_MAX_SUBHEADER_WORDS = 4

# Periods after these words do not end a sentence (titles, Latin and dosing abbreviations).
_NO_SPLIT_AFTER = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "mx",
        "prof",
        "st",
        "sr",
        "jr",
        "vs",
        "v",
        "no",
        "nos",
        "approx",
        "appt",
        "dept",
        "fig",
        "min",
        "max",
        "ca",
        "e.g",
        "i.e",
        "b.i.d",
        "t.i.d",
        "q.i.d",
        "q.d",
        "q.o.d",
        "p.o",
        "p.r.n",
        "q.h.s",
        "h.s",
        "a.m",
        "p.m",
        "c.f",
        "viz",
        "wt",
        "ht",
    ]
)
# Dosing abbreviations end a sentence only when a capitalised word follows.
_DOTTED = re.compile(r"(?:[a-z]\.){1,3}[a-z]$", re.IGNORECASE)
_BOUNDARY = re.compile(
    r"(?P<stop>[.!?]+)[\"')\]]*(?P<space>\s+|,+\s*)(?=[\"'(\[]?[A-Z0-9])"
    r"|(?P<list>,\s*(?=\d{1,2}[.)]\s))"
    r"|(?P<para>\n[ \t]*\n\s*)"
    r"|(?P<line>(?<![,;:])\n(?=[ \t]*(?:(?:[-*•]|\d{1,2}[.)])\s|[A-Z])))"
    r"|(?P<semi>;\s+(?=\d{1,2}[.)]\s))"
)
# "1." opening a list item, after a header, a comma, a line break or a previous sentence.
_LIST_MARKER = re.compile(r"(?:^|[,:;.\n])\s*\d{1,2}$")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_ALNUM = re.compile(r"[^\W_]")
_TRIM_LEAD = " \t\r\n,;:"
_TRIM_TAIL = " \t\r\n,;"


@dataclass(frozen=True)
class SectionRule:
    """One header-normalisation rule: a regex over the lower-cased title and the section it names."""

    pattern: re.Pattern[str]
    section: str


@functools.cache
def _section_rules() -> tuple[SectionRule, ...]:
    with (DATA_DIR / "sections.csv").open(encoding="utf-8") as fh:
        return tuple(
            SectionRule(re.compile(row["pattern"]), row["section"]) for row in csv.DictReader(fh)
        )


@functools.cache
def _body_systems() -> frozenset[str]:
    with (DATA_DIR / "body_systems.csv").open(encoding="utf-8") as fh:
        return frozenset(row["term"] for row in csv.DictReader(fh))


def normalise_section(title: str) -> str | None:
    """Map a header title to a canonical section name.

    Parameters
    ----------
    title : str
        The header as written, e.g. ``"CURRENT MEDICATIONS"`` or ``"Meds"``.

    Returns
    -------
    str or None
        ``"medications"``, ``"plan"``, ... ; ``"exam"`` for body-system sub-headers such as
        ``"HEENT"``; None when the title is not recognised.
    """
    key = " ".join(title.lower().replace("_", " ").split()).strip(" :")
    for rule in _section_rules():
        if rule.pattern.search(key):
            return rule.section
    if key in _body_systems():
        return "exam"
    return None


def find_headers(text: str) -> list[tuple[int, int, str, str]]:
    """Find section headers in a note.

    Returns
    -------
    list of (start, end, title, section)
        Character span of the whole header (title, colon and trailing comma), the title as written
        and its canonical section; sub-headers inside the exam or review of systems keep that
        section, and unrecognised all-capitals headers are named ``"other"``.
    """
    found: list[tuple[int, int, str, str]] = []
    current: str | None = None
    spans = [(m.start("title"), m.end(), m.group("title").strip()) for m in _HEADER.finditer(text)]
    if "\n" in text:
        spans += [
            (m.start("title"), m.end(), m.group("title").strip())
            for m in _LINE_HEADER.finditer(text)
        ]
        spans.sort()
    for start, end, title in spans:
        section = _classify(title, text, start, current)
        if section is None:
            continue
        if found and start < found[-1][1]:
            continue
        found.append((start, end, title, section))
        current = section
    return found


def _classify(title: str, text: str, start: int, current: str | None) -> str | None:
    words = title.split()
    if not words or len(words) > _MAX_HEADER_WORDS:
        return None
    upper = title.upper() == title and any(c.isalpha() for c in title)
    if not upper and (len(words) > _MAX_SUBHEADER_WORDS or not _starts_line_or_item(text, start)):
        return None
    section = normalise_section(title)
    is_subheader = title.lower() in _body_systems()
    if is_subheader and current in ("exam", "review_of_systems"):
        return current
    if section is None:
        return "other" if upper and len(title) > 2 else None
    return section


def _starts_line_or_item(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t")
    return not before or before[-1] in ",\n"


def segment(text: str) -> tuple[list[Section], list[Sentence]]:
    """Split a note into sections and sentences.

    Parameters
    ----------
    text : str
        The note, with or without line breaks.

    Returns
    -------
    sections : list of Section
        One per recognised header, spanning to the next header (character offsets).
    sentences : list of Sentence
        Sentences in text order, each tagged with its section; header titles are not sentences.
    """
    headers = find_headers(text)
    sections: list[Section] = []
    bodies: list[tuple[int, int, str | None]] = []
    first = headers[0][0] if headers else len(text)
    bodies.append((0, first, None))
    for i, (start, end, title, section_name) in enumerate(headers):
        stop = headers[i + 1][0] if i + 1 < len(headers) else len(text)
        sections.append(Section(name=section_name, title=title, start=start, end=stop))
        bodies.append((end, stop, section_name))
    sentences: list[Sentence] = []
    for start, stop, name in bodies:
        for s, e in split_sentences(text, start, stop):
            sentences.append(
                Sentence(index=len(sentences), start=s, end=e, text=text[s:e], section=name)
            )
    return sections, sentences


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans within ``text[start:end]``.

    Splits at sentence-final punctuation followed by a capital or digit (not after titles such as
    "Dr." or inside "b.i.d." dosing), at numbered or bulleted list items, at blank lines and at
    line breaks followed by a capital (unless the line ended with a comma or colon); decimals such as
    "8.2" and fractions such as "150/95" never split because they contain no space.

    Returns
    -------
    list of (start, end)
        Character offsets into ``text``, trimmed of surrounding spaces and commas.
    """
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for m in _BOUNDARY.finditer(text, start, stop):
        if m.group("stop") is not None:
            if not _is_sentence_end(text, m.start(), m.end()):
                continue
            cut, resume = m.start("space"), m.end()
        else:
            cut, resume = m.start(), m.end()
        _append_trimmed(text, cursor, cut, spans)
        cursor = resume
    _append_trimmed(text, cursor, stop, spans)
    return spans


def _is_sentence_end(text: str, dot: int, after: int) -> bool:
    if text[dot] != ".":
        return True
    if _LIST_MARKER.search(text, max(0, dot - 8), dot):
        return False
    m = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    if m is None:
        return True
    word = m.group(1).lower().rstrip(".")
    if word in _NO_SPLIT_AFTER and not _DOTTED.search(word):
        return False
    if len(m.group(1)) == 1 and m.group(1).isupper():
        return False  # an initial, as in "J. Smith"
    if _DOTTED.search(word) or word in _NO_SPLIT_AFTER:
        nxt = text[after : after + 1]
        return nxt.isupper()
    return True


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start] in _TRIM_LEAD:
        start += 1
    while end > start and text[end - 1] in _TRIM_TAIL:
        end -= 1
    if end > start and _ALNUM.search(text, start, end):
        spans.append((start, end))


# Numbers with decimals, dotted abbreviations ("b.i.d."), words with apostrophes ("mother's");
# anything else is a one-character token, so hyphens and slashes split ("lisinopril/HCTZ",
# "amoxicillin-clavulanate") as they do in spaCy's English tokenizer.
_TOKEN_WS = re.compile(
    r"(\d+(?:[.,]\d+)*|(?:[A-Za-z]\.){2,}[A-Za-z]?|[^\W_]+(?:'[^\W_]+)*|\S)(\s*)"
)


class ClinicalTokenizer:
    """A regex tokenizer for spaCy, about five times faster than the English rule tokenizer.

    Clinical notes gain little from the English tokenizer's exceptions, and the pipeline's
    matchers only need every lexicon phrase to be tokenized the same way as the notes, which
    holds because both go through this class. The Doc's text equals the input exactly.
    """

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        lead = len(text) - len(text.lstrip())
        if lead:
            words.append(text[:lead])
            spaces.append(False)
        for token, gap in _TOKEN_WS.findall(text, lead):
            words.append(token)
            if not gap:
                spaces.append(False)
            elif gap == " ":
                spaces.append(True)
            else:
                # spaCy keeps one trailing space per token; other whitespace is its own token.
                trailing = gap[0] == " "
                spaces.append(trailing)
                words.append(gap[1:] if trailing else gap)
                spaces.append(False)
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        """Tokenize many texts (``batch_size`` is accepted for spaCy compatibility)."""
        for text in texts:
            yield self(text)
