"""Medication mentions: a drug lexicon matcher plus dose, route and frequency parsing.

Names come from the ``drug-named-entity-recognition`` lexicon (generic and brand names with
brand-to-generic mapping), filtered of laboratory analytes, proteins and drug-class terms, and
extended with ``data/drug_extra.csv``; drug classes and RxNorm codes come from
``data/drug_classes.csv``.
"""

from __future__ import annotations

import bz2
import csv
import functools
import pickle
import re
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

__all__ = [
    "DrugInfo",
    "DrugLexicon",
    "MedicationMatch",
    "build_drug_matcher",
    "find_medications",
    "load_drug_lexicon",
    "parse_sig",
]

DATA_DIR = Path(__file__).parent / "data"
_LEXICON_PACKAGE = "drug_named_entity_recognition"
_LEXICON_FILE = "drug_ner_dictionary.pkl.bz2"
# MeSH tree branches that hold enzymes, proteins, nucleic acids, biological factors and
# pharmacological-action (class) headings rather than administrable products.
_NON_PRODUCT_TREES = ("D08", "D12", "D13", "D23", "D27", "D05")
_SIG_WINDOW = 80
_MIN_NAME_LENGTH = 3
# ASA also names the anaesthetic physical-status score ("ASA class II").
_ASA_SCORE = re.compile(r"\s*(?:class|grade|score|physical|ps|[IV]{1,3}\b|[1-6]\b)", re.IGNORECASE)


@dataclass(frozen=True)
class DrugInfo:
    """What a drug name stands for.

    ``generic`` is empty for a class mention such as "statin"; ``code`` is an RxNorm ingredient
    RXCUI when ``data/drug_classes.csv`` lists one.
    """

    generic: str
    drug_class: str | None = None
    drug_classes: tuple[str, ...] = ()
    code: str | None = None
    is_brand: bool = False
    drugbank_id: str | None = None
    atc: str | None = None
    capitalised_only: bool = False


@dataclass(frozen=True)
class DrugLexicon:
    """Lower-cased name variants mapped to their drug."""

    variants: dict[str, DrugInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class MedicationMatch:
    """One medication mention with its parsed dosing instructions."""

    start: int
    end: int
    text: str
    info: DrugInfo
    sig: dict[str, Any]


@dataclass(frozen=True)
class _ClassRow:
    drug_class: str
    atc: str
    rxnorm: str


@functools.cache
def _class_table() -> dict[str, _ClassRow]:
    with (DATA_DIR / "drug_classes.csv").open(encoding="utf-8") as fh:
        return {
            row["generic"]: _ClassRow(row["drug_class"], row["atc"], row["rxnorm"])
            for row in csv.DictReader(fh)
        }


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _clean_generic(name: str) -> str:
    name = re.sub(r"\s*\([^)]*\)", "", name.lower()).strip()
    if name.startswith("insulin,"):
        name = "insulin " + name.split(",")[1].strip()
    return name


def classify_generic(generic: str) -> _ClassRow | None:
    """The class row for a generic name, trying salts ("metoprolol succinate") and combinations."""
    table = _class_table()
    if generic in table:
        return table[generic]
    if generic.startswith("insulin"):
        return table["insulin"]
    for part in re.split(r"\s+and\s+|\s*/\s*|,\s*", generic):
        if part in table:
            return table[part]
        head = part.split(" ")[0]
        if head in table:
            return table[head]
    return None


def classes_of(generic: str) -> tuple[str, ...]:
    """Every class of a generic name; combinations such as "losartan and hydrochlorothiazide" have several."""
    parts = re.split(r"\s+and\s+|\s*/\s*|,\s*", generic)
    found: list[str] = []
    for part in parts:
        row = classify_generic(part) if part else None
        if row is not None and row.drug_class not in found:
            found.append(row.drug_class)
    return tuple(found)


def _is_product(data: dict[str, Any]) -> bool:
    if not data:
        return True  # hand-added entries of the upstream lexicon carry no metadata
    if data.get("medline_plus_id") or data.get("nhs_url"):
        return True
    trees = cast(list[str], data.get("mesh_tree") or [])
    return not trees or not all(t.startswith(_NON_PRODUCT_TREES) for t in trees)


def _info_for(canonical: str, data: dict[str, Any], is_brand: bool) -> DrugInfo:
    generic = _clean_generic(str(data.get("name") or canonical))
    row = classify_generic(generic)
    return DrugInfo(
        generic=generic,
        drug_class=row.drug_class if row else None,
        drug_classes=classes_of(generic),
        code=(row.rxnorm or None) if row and generic in _class_table() else None,
        is_brand=is_brand,
        drugbank_id=cast(str | None, data.get("drugbank_id")),
        atc=(row.atc or None) if row else None,
    )


def _load_upstream() -> dict[str, Any]:
    spec = find_spec(_LEXICON_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {_LEXICON_PACKAGE} package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / _LEXICON_FILE
    # Read the data file directly: importing the package builds a fuzzy-match index we do not use.
    with bz2.open(path, "rb") as fh:
        return cast(dict[str, Any], pickle.load(fh))


@functools.cache
def load_drug_lexicon() -> DrugLexicon:
    """Build the drug-name lexicon once per process.

    Returns
    -------
    DrugLexicon
        About 60,000 lower-cased names (generic, brand, abbreviation) mapped to a generic name,
        drug class, RxNorm code and DrugBank id.
    """
    upstream = _load_upstream()
    canonical_data = cast(dict[str, dict[str, Any]], upstream["drug_canonical_to_data"])
    variant_data = cast(dict[str, dict[str, Any]], upstream["drug_variant_to_variant_data"])
    stop = {row["term"] for row in _read_csv("drug_stoplist.csv")}
    variants: dict[str, DrugInfo] = {}
    for variant, canonicals in upstream["drug_variant_to_canonical"].items():
        if len(variant) < _MIN_NAME_LENGTH or variant in stop or variant.isdigit():
            continue
        canonical = canonicals[0]
        data = canonical_data.get(canonical, {})
        if canonical in stop or not _is_product(data):
            continue
        is_brand = bool(variant_data.get(variant, {}).get("is_brand", variant != canonical))
        variants[variant] = _info_for(canonical, data, is_brand)
    for row in _read_csv("drug_extra.csv"):
        variants[row["term"]] = _extra_info(row)
    return DrugLexicon(variants=variants)


def _extra_info(row: dict[str, str]) -> DrugInfo:
    generic = row["generic"]
    capitalised = row["capitalised_only"] == "1"
    if not generic:
        return DrugInfo(generic="", drug_class=row["drug_class"] or None)
    known = classify_generic(generic)
    drug_class = row["drug_class"] or (known.drug_class if known else None)
    in_table = generic in _class_table()
    return DrugInfo(
        generic=generic,
        drug_class=drug_class,
        drug_classes=classes_of(generic) or ((drug_class,) if drug_class else ()),
        code=(_class_table()[generic].rxnorm or None) if in_table else None,
        is_brand=True,
        atc=known.atc if known else None,
        capitalised_only=capitalised,
    )


def _key(words: list[str]) -> str:
    return " ".join(w.lower() for w in words)


def build_drug_matcher(
    nlp: Language, lexicon: DrugLexicon
) -> tuple[PhraseMatcher, dict[str, DrugInfo]]:
    """A case-insensitive PhraseMatcher over every lexicon name.

    Returns
    -------
    matcher : PhraseMatcher
        Matches under the single key ``"DRUG"``.
    by_tokens : dict
        Lexicon entries keyed by their space-joined lower-cased tokens, for looking up a match.
    """
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    by_tokens: dict[str, DrugInfo] = {}
    patterns: list[Doc] = []
    for name, info in lexicon.variants.items():
        words = name.split(" ")
        # Plain words are single tokens, so skip the tokenizer for the bulk of the lexicon.
        doc = Doc(nlp.vocab, words=words) if all(w.isalpha() for w in words) else nlp.make_doc(name)
        patterns.append(doc)
        by_tokens.setdefault(_key([t.text for t in doc]), info)
    matcher.add("DRUG", patterns)
    return matcher, by_tokens


def find_medications(
    doc: Doc,
    text: str,
    matcher: PhraseMatcher,
    by_tokens: dict[str, DrugInfo],
    limits: list[int] | None = None,
) -> list[MedicationMatch]:
    """Medication mentions in a tokenized note, longest match first, with dosing parsed.

    Parameters
    ----------
    doc : Doc
        The tokenized note.
    text : str
        The note's text (``doc.text``, passed to avoid rebuilding it).
    matcher, by_tokens
        From :func:`build_drug_matcher`.
    limits : list of int, optional
        Sorted character offsets (sentence ends) that a dosing window may not cross.
    """
    spans = filter_spans([Span(doc, s, e) for _, s, e in matcher(doc)])
    found: list[MedicationMatch] = []
    for i, span in enumerate(spans):
        info = by_tokens.get(_key([t.text for t in span]))
        if info is None or _is_false_positive(text, span, info):
            continue
        stop = spans[i + 1].start_char if i + 1 < len(spans) else len(text)
        stop = min(stop, _next_limit(limits, span.end_char), span.end_char + _SIG_WINDOW)
        sig = parse_sig(text[span.end_char : stop])
        found.append(MedicationMatch(span.start_char, span.end_char, span.text, info, sig))
    return found


def _next_limit(limits: list[int] | None, pos: int) -> int:
    if not limits:
        return 1 << 62
    for limit in limits:
        if limit >= pos:
            return limit
    return 1 << 62


def _is_false_positive(text: str, span: Span, info: DrugInfo) -> bool:
    if info.capitalised_only and not span.text[:1].isupper():
        return True
    if span.text.lower() == "asa":
        after = text[span.end_char : span.end_char + 12]
        return bool(_ASA_SCORE.match(after))
    # "arb" in lower case is not the class abbreviation.
    return not info.generic and span.text.islower() and len(span.text) <= 3


# --- dosing instructions -----------------------------------------------------------------

_DOSE = re.compile(
    r"(?<![#\d.])(?P<value>\d+(?:\.\d+)?(?:\s*(?:/|-|to)\s*\d+(?:\.\d+)?)?)\s*-?\s*"
    r"(?P<unit>mg|mcg|µg|micrograms?|milligrams?|grams?|gm|g|units?|iu|u|ml|meq|%|puffs?|"
    r"tablets?|tabs?|capsules?|caps?|drops?|sprays?)(?![a-z])",
    re.IGNORECASE,
)
_ROUTES: tuple[tuple[str, str], ...] = (
    (r"p\.?\s?o\.?|by mouth|orally|oral", "oral"),
    (r"i\.?v\.?|intravenous(?:ly)?|iv push|ivpb", "intravenous"),
    (r"i\.?m\.?|intramuscular(?:ly)?", "intramuscular"),
    (r"sub-?q|s\.?q\.?|s\.?c\.?|subcut(?:aneous(?:ly)?)?", "subcutaneous"),
    (r"s\.?l\.?|sublingual(?:ly)?", "sublingual"),
    (r"topical(?:ly)?", "topical"),
    (r"inhaled|inhalation|inh|nebuli[sz]ed|nebs?|via nebulizer|mdi", "inhaled"),
    (r"p\.?r\.?|per rectum|rectal(?:ly)?", "rectal"),
    (r"transdermal(?:ly)?|patch", "transdermal"),
    (r"intranasal(?:ly)?|nasal(?:ly)?|in each nostril", "nasal"),
    (r"ophthalmic|in (?:each|both|the (?:right|left)) eyes?", "ophthalmic"),
)
_FREQUENCIES: tuple[tuple[str, str], ...] = (
    (r"q\.?\s?(?P<hours>\d{1,2})\s?(?:h|hrs?|hours?)\.?|every (?P<hours2>\d{1,2}) hours?", "q{n}h"),
    (r"b\.?i\.?d\.?|twice (?:a |per )?day|twice daily|two times (?:a |per )?day", "bid"),
    (r"t\.?i\.?d\.?|three times (?:a |per )?day|three times daily", "tid"),
    (r"q\.?i\.?d\.?|four times (?:a |per )?day|four times daily", "qid"),
    (r"q\.?h\.?s\.?|h\.s\.|at bedtime|nightly|every night|at night", "qhs"),
    (r"q\.?\s?p\.?m\.?|every evening|in the evening", "qpm"),
    (r"q\.?\s?a\.?m\.?|every morning|in the morning", "qam"),
    (r"q\.?o\.?d\.?|every other day|alternate days", "qod"),
    (r"weekly|once a week|every week|q\.?\s?week|q\.?\s?wk", "weekly"),
    (r"monthly|once a month|every month", "monthly"),
    (r"q\.?\s?d\.?|daily|once (?:a |per )?day|every day|once daily|per day|a day", "daily"),
)
_PRN = re.compile(r"(?<![a-z])(?:p\.?r\.?n\.?|as needed|when needed|if needed)(?![a-z])", re.I)


def _compile(table: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(rf"(?<![a-z])(?:{p})(?![a-z])", re.IGNORECASE), n) for p, n in table]


_ROUTE_RES = _compile(_ROUTES)
_FREQ_RES = _compile(_FREQUENCIES)


def parse_sig(window: str) -> dict[str, Any]:
    """Dose, route and frequency written after a drug name.

    Parameters
    ----------
    window : str
        Text following the drug name up to the next drug or sentence end,
        e.g. ``" 10 mg p.o. b.i.d. p.r.n."``.

    Returns
    -------
    dict
        Any of ``dose`` (``"10 mg"``), ``dose_value`` (float, first number), ``dose_unit``,
        ``route`` (``"oral"``, ...), ``frequency`` (``"daily"``, ``"bid"``, ``"q6h"``, ...) and
        ``prn`` (True).
    """
    sig: dict[str, Any] = {}
    dose = _DOSE.search(window)
    if dose is not None:
        value = dose.group("value")
        unit = dose.group("unit").lower()
        sig["dose"] = f"{value} {unit}"
        first = re.match(r"\d+(?:\.\d+)?", value)
        if first is not None:
            sig["dose_value"] = float(first.group(0))
        sig["dose_unit"] = unit
    for pattern, route in _ROUTE_RES:
        if pattern.search(window):
            sig["route"] = route
            break
    for pattern, freq in _FREQ_RES:
        m = pattern.search(window)
        if m is not None:
            if freq == "q{n}h":
                hours = m.groupdict().get("hours") or m.groupdict().get("hours2")
                freq = f"q{hours}h"
            sig["frequency"] = freq
            break
    if _PRN.search(window):
        sig["prn"] = True
    return sig
