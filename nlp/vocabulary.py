"""Findings and disorders from the ontology-built vocabulary, matched the way clinicians write.

``data/finding_vocabulary.csv`` (built by ``scripts/build_vocabulary.py`` from the Human Phenotype
Ontology, the Human Disease Ontology and the project's ``problems.csv`` and ``problems_added.csv``;
see ``data/VOCABULARY.md``) gives each concept an id, a name, a SNOMED CT code where known, and
its surface forms. Matching is on a normalised word form (lower case, singular, American
spelling), so "Fevers", "oedema" and "Pains" find "fever", "edema" and "pain"; a hyphenated
wording also matches written open or closed. Findings the vocabulary cannot list are found by
their form (:func:`find_generic_findings`). Curated abbreviations
(``data/abbreviations.csv``) match only where their context allows ("MS" is multiple sclerosis in
"history of MS", not in "MS 4 mg"). A finding takes the anatomical words before it or an "of/in
the <site>" phrase after it ("left lower extremity edema", "pain in the chest"), and becomes the
more specific concept when site and finding together name one ("chest pain").
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spacy.attrs import NORM
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from nlp.problems import (
    MEDICAL_ENDINGS,
    NOT_FINDING_WORDS,
    LexiconTerm,
    TermMatch,
    find_generic_problems,
    find_headed_phrases,
)

__all__ = [
    "Abbreviation",
    "FindingMatcher",
    "find_generic_findings",
    "hyphen_variants",
    "load_abbreviations",
    "load_vocabulary",
    "normalise_phrase",
    "normalise_word",
    "use_normalised_norms",
]

DATA_DIR = Path(__file__).parent / "data"
VOCABULARY_FILE = "finding_vocabulary.csv"

# British spellings and Greek/Latin ligature forms, rewritten to the American spelling the
# ontologies use as preferred names ("oedema" -> "edema", "haemorrhage" -> "hemorrhage").
_SPELLING = (
    ("oesoph", "esoph"), ("oedem", "edem"), ("haem", "hem"), ("aemia", "emia"),
    ("ischaem", "ischem"), ("anaes", "anes"), ("paed", "ped"), ("caec", "cec"),
    ("coeli", "celi"), ("foet", "fet"), ("oestr", "estr"), ("dyspnoea", "dyspnea"),
    ("rrhoea", "rrhea"), ("apnoea", "apnea"), ("tumour", "tumor"), ("colour", "color"),
    ("behaviour", "behavior"), ("ysed", "yzed"), ("orthopaed", "orthoped"),
    ("hypokalaem", "hypokalem"), ("glycaem", "glycem"), ("kalaem", "kalem"),
    ("natraem", "natrem"), ("calcaem", "calcem"), ("uraem", "urem"), ("septicaem", "septicem"),
    ("lipidaem", "lipidem"), ("aemic", "emic"), ("gynaec", "gynec"), ("aetiol", "etiol"),
    ("manoeuv", "maneuv"), ("caesar", "cesar"),
)  # fmt: skip
# Spellings the gate for the table above does not see: "-ise" verbs ("localised",
# "generalised", "hospitalisation"), "leucocytosis", "sulphate", "fibre", "centre".
_SPELLING_MORE = (("leuco", "leuko"), ("sulph", "sulf"), ("fibre", "fiber"), ("centre", "center"))
_ISE = (("isation", "ization"), ("ised", "ized"), ("ising", "izing"), ("ises", "izes"))
# Words that end in "s" or "i" but are singular, and the Latin plurals notes use.
_SINGULAR = frozenset(
    {
        "diabetes", "herpes", "rabies", "scabies", "caries", "series", "species", "measles",
        "mumps", "rickets", "ascites", "feces", "faeces", "nares", "pes", "lens", "aids",
        "biceps", "triceps", "quadriceps", "pubis", "pelvis", "glottis", "epiglottis",
        "thorax", "news", "gas", "pancreas", "atlas", "iris", "testis", "syphilis", "lupus",
        "status", "sinus", "virus", "fungus", "nevus", "thrombus", "embolus", "bronchus",
        "calculus", "abdomen", "plus", "versus", "bus", "mucus", "hiatus", "uterus", "anus",
        "meatus", "stenosis", "analysis", "tetanus", "pectus", "varus", "valgus", "rhonchus",
    }
)  # fmt: skip
_LATIN_PLURALS = {
    "emboli": "embolus", "thrombi": "thrombus", "bronchi": "bronchus", "calculi": "calculus",
    "nevi": "nevus", "naevi": "nevus", "fungi": "fungus", "rhonchi": "rhonchus",
    "bacilli": "bacillus", "alveoli": "alveolus", "vertebrae": "vertebra", "bullae": "bulla",
    "metastases": "metastasis", "stenoses": "stenosis", "diagnoses": "diagnosis",
    "anastomoses": "anastomosis", "thromboses": "thrombosis", "neuroses": "neurosis",
    "psychoses": "psychosis", "effusions": "effusion", "ecchymoses": "ecchymosis",
    "varices": "varix", "appendices": "appendix", "indices": "index", "teeth": "tooth",
    "feet": "foot", "testes": "testis",
}  # fmt: skip
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|(?:[A-Za-z]\.){2,}[A-Za-z]?|[^\W_]+(?:'[^\W_]+)*|\S")
# Words that say the same thing in a finding's name, read as one (after singularising): an
# organ's Latin or Greek adjective and its English noun ("renal stones" are "kidney stones",
# "biliary ductal dilatation" is "bile duct dilatation", "testicle pain" is "testicular pain"),
# and head words notes and ontologies use for each other ("crying spells" are "crying
# episodes", "periodic breathing" is "periodic respiration", "dilation" is "dilatation", an
# "optic disk" the "optic disc", an "ingrown toenail" an "ingrown nail").
# Only adjectives with a single bodily meaning: not "cervical" (neck or cervix), "macular"
# (macula or macule), "radial", "labial", "mental" or "thoracic".
_SAME_WORD = {
    "renal": "kidney", "nephric": "kidney", "hepatic": "liver", "pulmonary": "lung",
    "cardiac": "heart", "gastric": "stomach", "cerebral": "brain", "ocular": "eye",
    "nasal": "nose", "cutaneous": "skin", "dermal": "skin", "dental": "tooth", "otic": "ear",
    "aural": "ear", "biliary": "bile", "ductal": "duct", "venous": "vein", "arterial": "artery",
    "vertebral": "vertebra", "spinal": "spine", "esophageal": "esophagus", "colonic": "colon",
    "rectal": "rectum", "anal": "anus", "vesical": "bladder", "urethral": "urethra",
    "ureteral": "ureter", "uterine": "uterus", "ovarian": "ovary", "testicular": "testis",
    "testicle": "testis", "scrotal": "scrotum", "penile": "penis", "prostatic": "prostate",
    "pancreatic": "pancreas", "splenic": "spleen", "laryngeal": "larynx",
    "pharyngeal": "pharynx", "tracheal": "trachea", "bronchial": "bronchus",
    "retinal": "retina", "corneal": "cornea", "conjunctival": "conjunctiva", "facial": "face",
    "abdominal": "abdomen", "pelvic": "pelvis", "muscular": "muscle", "osseous": "bone",
    "mammary": "breast", "gingival": "gingiva", "atrial": "atrium",
    "ventricular": "ventricle", "valvular": "valve", "aortic": "aorta",
    "respiration": "breathing", "dilation": "dilatation", "spell": "episode",
    "attack": "episode", "disk": "disc", "toenail": "nail", "fingernail": "nail",
}  # fmt: skip


def normalise_word(word: str) -> str:
    """A word's matching form: lower case, American spelling, singular, one of like words.

    ``"Fevers"`` gives ``"fever"``, ``"oedema"`` ``"edema"``, ``"arteries"`` ``"artery"``,
    ``"abscesses"`` ``"abscess"``, ``"emboli"`` ``"embolus"``; ``"diabetes"`` is left alone;
    ``"renal"`` gives ``"kidney"`` and ``"spells"`` ``"episode"`` (``_SAME_WORD``).
    """
    w = _word_form(word)
    return _SAME_WORD.get(w, w)


def _word_form(word: str) -> str:
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    elif w.endswith("s'"):  # "Fuchs' dystrophy", "the patients' symptoms"
        w = w[:-1]
    if len(w) <= 3 or not w.isalpha():
        return w
    if "ae" in w or "oe" in w or "our" in w or "ys" in w:
        for british, american in _SPELLING:
            if british in w:
                w = w.replace(british, american)
    if "leuc" in w or "ulph" in w or w.endswith(("tre", "bre", "tres", "bres")):
        for british, american in _SPELLING_MORE:
            if british in w:
                w = w.replace(british, american)
    if len(w) > 6 and "is" in w[-7:]:
        for british, american in _ISE:
            if w.endswith(british):
                w = w[: -len(british)] + american
                break
    if w in _SINGULAR:
        return w
    latin = _LATIN_PLURALS.get(w)
    if latin is not None:
        return latin
    if w.endswith("itides"):  # "arthritides", "dermatitides"
        return w[:-6] + "itis"
    if w.endswith("kinesis"):  # echocardiography's "hypokinesis" is the ontologies' "hypokinesia"
        return w[:-1] + "a"
    if w.endswith("itic") and len(w) > 7:  # "arthritic", "bronchitic": having the "-itis"
        return w[:-1] + "s"
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def normalise_phrase(text: str) -> str:
    """The matching form of a phrase: its tokens (as the pipeline splits them) normalised."""
    return " ".join(normalise_word(t) for t in _TOKEN.findall(text))


def use_normalised_norms(nlp: Language) -> None:
    """Give every word the pipeline sees its :func:`normalise_word` form as ``NORM``.

    Call before the first text is tokenised: spaCy computes a word's ``NORM`` once, when the
    word first enters the vocabulary, so the cost is per distinct word rather than per token.
    """
    # spaCy's stubs omit this public dict of the functions that set new lexemes' attributes.
    nlp.vocab.lex_attr_getters[NORM] = normalise_word  # type: ignore[attr-defined]


_INNER_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")


def hyphen_variants(surface: str) -> list[str]:
    """A wording and the ways it is written without its hyphens.

    ``"non-Hodgkin lymphoma"`` also gives ``"non Hodgkin lymphoma"`` and ``"nonHodgkin
    lymphoma"``. (Hyphenating every two-word term as well, "chest-pain", cost 30 MB and
    1.5 s of load for nothing measurable on the development sentences.)
    """
    if not _INNER_HYPHEN.search(surface):
        return [surface]
    return [surface, _INNER_HYPHEN.sub(" ", surface), _INNER_HYPHEN.sub("", surface)]


def _acronym_forms(surface: str) -> list[str]:
    """An upper-case abbreviation and its plural with a small "s" ("TIA", "TIAs")."""
    if len(surface) >= 2 and surface.isalpha() and surface.isupper() and surface[-1] != "S":
        return [surface, surface + "s"]
    return [surface]


@dataclass(frozen=True)
class Abbreviation:
    """A curated abbreviation of a concept and the context it needs.

    ``unless`` is a regex over the words around it (the abbreviation replaced by ``@``) that
    rules the finding out ("MS 4 mg", "PT/INR"); ``only_if``, when given, must match there.
    """

    text: str
    concept_id: str
    case_sensitive: bool
    unless: re.Pattern[str] | None
    only_if: re.Pattern[str] | None


def load_vocabulary() -> tuple[tuple[str, LexiconTerm], ...]:
    """Every surface form of ``finding_vocabulary.csv`` with the concept it names.

    A surface written ``=MI`` is matched exactly (upper case); others on their normalised form.
    ``morbid obesity^238136002`` gives that wording its own, more specific SNOMED CT code.
    """
    return _read_vocabulary()[0]


def merged_concepts() -> dict[str, str]:
    """Concept ids the vocabulary merged into another concept (its ``same_as``), and that concept.

    A rebuild can merge a concept an abbreviation names into another of the same wording
    ("acute kidney failure" into "acute kidney injury" once "renal" reads as "kidney"); the
    abbreviation then names the concept it was merged into.
    """
    return _read_vocabulary()[1]


@functools.cache
def _read_vocabulary() -> tuple[tuple[tuple[str, LexiconTerm], ...], dict[str, str]]:
    """``finding_vocabulary.csv`` read once: its surface forms and its merged concept ids."""
    out: list[tuple[str, LexiconTerm]] = []
    merged: dict[str, str] = {}
    with (DATA_DIR / VOCABULARY_FILE).open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for surface in row["terms"].split("|"):
                exact = surface.startswith("=")
                surface, _, code = surface.partition("^")
                term = LexiconTerm(
                    term=surface.lstrip("="),
                    normalized=row["name"],
                    code=code or row["snomed"] or None,
                    category=row["category"],
                    case_sensitive=exact,
                    concept_id=row["concept_id"],
                )
                out.append((term.term, term))
            for alias in row["same_as"].split():
                merged.setdefault(alias, row["concept_id"])
    return tuple(out), merged


@functools.cache
def load_abbreviations() -> tuple[Abbreviation, ...]:
    """The curated abbreviations of ``data/abbreviations.csv``."""

    def pattern(value: str) -> re.Pattern[str] | None:
        return re.compile(value, re.IGNORECASE) if value else None

    with (DATA_DIR / "abbreviations.csv").open(encoding="utf-8") as fh:
        return tuple(
            Abbreviation(
                row["abbreviation"],
                row["concept_id"],
                row["case_sensitive"] == "1",
                pattern(row["unless"]),
                pattern(row["only_if"]),
            )
            for row in csv.DictReader(fh)
        )


@functools.cache
def _anatomy() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Normalised site words, the qualifiers among them ("left", "lower"), and finding heads."""
    sites: set[str] = set()
    qualifiers: set[str] = set()
    heads: set[str] = set()
    with (DATA_DIR / "anatomy.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            word = normalise_phrase(row["word"])
            if row["kind"] == "head":
                heads.add(word)
            else:
                sites.add(word)
                if row["kind"] == "qualifier":
                    qualifiers.add(word)
    return frozenset(sites), frozenset(qualifiers), frozenset(heads)


_CONTEXT_CHARS = 40
# Words after a finding that make it name a prevention or an operation rather than something
# the patient has ("DVT prophylaxis", "cataract extraction", "hernia repair").
_PREVENTION = frozenset(
    {
        "prophylaxis", "prevention", "vaccine", "vaccination", "immunization", "precaution",
        "extraction", "repair", "excision", "resection", "removal", "surgery", "ligation",
    }
)  # fmt: skip
_PREVENTION_AFTER = re.compile(
    r"(?:\s+[A-Z])?\s+"  # "hepatitis A vaccine"
    r"(?:prophylaxis|prevention|vaccines?|vaccinations?|immunizations?|precautions?|"
    r"extraction|repair|excision|resection|removal|surgery|ligation)\b",
    re.IGNORECASE,
)
# Words after a finding that make it name a service, a place or a treatment for it ("pain
# medications", "the Pain Center", "migraine cocktail", "tumor bank", "SVT discrimination" of a
# defibrillator): the finding only modifies them. Normalised (singular) forms.
_MODIFIED = frozenset(
    {
        "medication", "medicine", "med", "cocktail", "bank", "center", "centre", "clinic",
        "specialist", "service", "team", "discrimination", "film", "shampoo",
    }
)  # fmt: skip
_BATCH = 500
_INVERTING = frozenset({"of", "in", "throughout", "within"})
_COORDINATORS = frozenset({"and", "or", ",", "and/or", "/"})
_DETERMINERS = frozenset({"the", "his", "her", "their", "its", "a", "an", "both"})
_OF_SITE = frozenset(
    {"of", "in", "on", "over", "to", "at", "involving", "the", "both", "his", "her"}
)


class FindingMatcher:
    """Finds vocabulary concepts in a Doc: longest match wins, sites attached, abbreviations checked.

    Parameters
    ----------
    nlp : Language
        The pipeline whose tokenizer made (and will make) the Docs; its ``NORM`` must be set by
        :func:`use_normalised_norms` before anything is tokenised.
    terms : iterable of (surface, LexiconTerm)
        Surface forms to match; the first term claiming a normalised form keeps it.
    abbreviations : iterable of Abbreviation
        Curated abbreviations; their concepts must be among ``terms``.
    """

    def __init__(
        self,
        nlp: Language,
        terms: Iterable[tuple[str, LexiconTerm]],
        abbreviations: Iterable[Abbreviation] = (),
    ) -> None:
        self._norm = PhraseMatcher(nlp.vocab, attr="NORM")
        self._exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self._by_norm: dict[str, LexiconTerm] = {}
        self._by_exact: dict[str, LexiconTerm] = {}
        self._by_concept: dict[str, LexiconTerm] = {}
        self._rules: dict[str, Abbreviation] = {}
        # Patterns go to the matchers in small batches: a Doc per term held all at once would
        # take some 200 MB that the process never gives back.
        pending: dict[bool, list[Doc]] = {True: [], False: []}

        def add(doc: Doc, exact: bool) -> None:
            pending[exact].append(doc)
            if len(pending[exact]) >= _BATCH:
                self._flush(pending, exact)

        for surface, term in terms:
            self._by_concept.setdefault(term.concept_id or term.normalized, term)
            table = self._by_exact if term.case_sensitive else self._by_norm
            forms = _acronym_forms(surface) if term.case_sensitive else hyphen_variants(surface)
            for form in forms:
                doc = nlp.make_doc(form)
                key = self._doc_key(doc, term.case_sensitive)
                if key not in table:
                    table[key] = term
                    add(doc, term.case_sensitive)
        for abbr in abbreviations:
            base = self._by_concept.get(abbr.concept_id)
            if base is None:
                base = self._by_concept.get(merged_concepts().get(abbr.concept_id, ""))
            if base is None:
                raise ValueError(f"abbreviations.csv: unknown concept_id {abbr.concept_id!r}")
            term = LexiconTerm(
                abbr.text, base.normalized, base.code, base.category, abbr.case_sensitive,
                base.concept_id,
            )  # fmt: skip
            forms = _acronym_forms(abbr.text) if abbr.case_sensitive else [abbr.text]
            for form in forms:
                doc = nlp.make_doc(form)
                key = self._doc_key(doc, abbr.case_sensitive)
                (self._by_exact if abbr.case_sensitive else self._by_norm)[key] = term
                self._rules[key] = abbr
                add(doc, abbr.case_sensitive)
        self._flush(pending, True)
        self._flush(pending, False)
        self._sites, self._qualifiers, self._heads = _anatomy()
        # Last words of three-word wordings, whose two modifiers notes write in either order.
        self._swappable = frozenset(k.split()[2] for k in self._by_norm if k.count(" ") == 2)
        # One-word wordings of letters only, which notes also write as two words.
        self._one_word = frozenset(k for k in self._by_norm if k.isalpha() and len(k) >= 6)

    @staticmethod
    def _doc_key(doc: Doc, exact: bool) -> str:
        return " ".join(t.text if exact else t.norm_ for t in doc)

    def _flush(self, pending: dict[bool, list[Doc]], exact: bool) -> None:
        if pending[exact]:
            (self._exact if exact else self._norm).add("FINDING", pending[exact])
            pending[exact] = []

    def __call__(self, doc: Doc) -> list[TermMatch]:
        """Longest non-overlapping findings in ``doc``, in text order."""
        # Each token's attributes are read once: a Token object per access costs more than the
        # lookups made with it.
        words = _Words.of(doc)
        norms = words.norm
        spans = [Span(doc, s, e, label="N") for _, s, e in self._norm(doc)]
        spans += [Span(doc, s, e, label="E") for _, s, e in self._exact(doc)]
        # Last, so that a wording matched as written wins over the same span turned round.
        inverted = self._inverted(words)
        inverted.update(self._elided(norms, spans))
        inverted.update(self._swapped(norms))
        inverted.update(self._closed(words))
        spans += [Span(doc, s, e, label="I") for s, e in inverted]
        found: list[TermMatch] = []
        text = words.text
        for span in filter_spans(spans):
            start, end = span.start, span.end
            if span.label_ == "I":
                turned = inverted[(start, end)]
                found.append(TermMatch(span.start_char, span.end_char, span.text, turned))
                continue
            if span.label_ == "E":
                key = " ".join(words.orth[start:end])
                term = self._by_exact.get(key)
            else:
                key = " ".join(norms[start:end])
                term = self._by_norm.get(key)
            if term is None:
                continue
            rule = self._rules.get(key)
            if rule is not None and not _context_allows(rule, text, span.start_char, span.end_char):
                continue
            if end < len(norms) and norms[end] in _PREVENTION | _MODIFIED:
                continue  # "DVT prophylaxis", "pain medications": not a finding here
            if end - start == 1 and _after_non(words, start):
                continue  # "non-tender", "non-distended": a normal examination
            found.append(self._with_site(words, span, term))
        return found

    def _inverted(self, words: _Words) -> dict[tuple[int, int], LexiconTerm]:
        # "infection of the urinary tract", "change in his voice", "fracture of the femur",
        # "trabeculation throughout the bladder": the one or two words after "of"/"in"
        # ("throughout", "within") put before the one or two words ahead of it
        # name a concept of the vocabulary (urinary tract infection, voice change); with a
        # "his"/"the" dropped, so may the words as written ("blood in his urine").
        found: dict[tuple[int, int], LexiconTerm] = {}
        norms = words.norm
        n = len(norms)
        for i, norm in enumerate(norms):
            if norm not in _INVERTING or i == 0 or words.is_stop[i - 1]:
                continue
            j = i + 1
            while j < n and j - i <= 2 and norms[j] in _DETERMINERS:
                j += 1
            for before in (2, 1):
                for after in (2, 1):
                    if i - before < 0 or j + after > n:
                        continue
                    key = " ".join([*norms[j : j + after], *norms[i - before : i]])
                    term = self._by_norm.get(key)
                    if term is None and j > i + 1:
                        # "blood in his urine": the wording itself, said of someone.
                        key = " ".join([*norms[i - before : i + 1], *norms[j : j + after]])
                        term = self._by_norm.get(key)
                    if term is not None and key not in self._rules:
                        found.setdefault((i - before, j + after), term)
        return found

    def _closed(self, words: _Words) -> dict[tuple[int, int], LexiconTerm]:
        # "light-headed", "light headed", "head aches", "heart burn": a one-word wording
        # ("lightheaded", "headache", "heartburn") written as two words, open or hyphenated.
        found: dict[tuple[int, int], LexiconTerm] = {}
        orth, alpha, space = words.orth, words.is_alpha, words.space
        n = len(orth)
        for i in range(n - 1):
            if not alpha[i] or len(orth[i]) < 3:
                continue
            j = i + 1
            if space[i]:
                if space[i] != " ":
                    continue
            elif orth[j] == "-" and not space[j] and j + 1 < n:
                j += 1
            else:
                continue
            if not alpha[j] or len(orth[j]) < 3:
                continue
            key = words.lower[i] + words.norm[j]
            if key in self._one_word and key not in self._rules:
                found.setdefault((i, j + 1), self._by_norm[key])
        return found

    def _swapped(self, norms: list[str]) -> dict[tuple[int, int], LexiconTerm]:
        # "atrial premature contractions" is "premature atrial contractions": two modifiers
        # before a head word, in the other order.
        found: dict[tuple[int, int], LexiconTerm] = {}
        for i in range(len(norms) - 2):
            head = norms[i + 2]
            if head not in self._swappable or norms[i] == norms[i + 1]:
                continue
            key = f"{norms[i + 1]} {norms[i]} {head}"
            term = self._by_norm.get(key)
            if term is not None and key not in self._rules:
                found.setdefault((i, i + 3), term)
        return found

    def _elided(self, norms: list[str], spans: list[Span]) -> dict[tuple[int, int], LexiconTerm]:
        # "urinary urgency and frequency", "knee pain or swelling": the words before a matched
        # finding's last word also qualify the word coordinated with it, when together they
        # name a concept (urinary frequency).
        found: dict[tuple[int, int], LexiconTerm] = {}
        for span in spans:
            j = span.end
            if span.end - span.start < 2 or j + 1 >= len(norms) or norms[j] not in _COORDINATORS:
                continue
            if norms[j] == "," and norms[j + 1] in _COORDINATORS:
                j += 1
            key = " ".join([*norms[span.start : span.end - 1], norms[j + 1]])
            term = self._by_norm.get(key)
            if term is not None and key not in self._rules:
                found.setdefault((j + 1, j + 2), term)
        return found

    def _with_site(self, words: _Words, span: Span, term: LexiconTerm) -> TermMatch:
        start, end = span.start, span.end
        norms = words.norm
        if norms[end - 1] not in self._heads:
            return TermMatch(span.start_char, span.end_char, span.text, term)
        # Site words before the finding: "left lower extremity edema", "right knee pain".
        while start > 0 and norms[start - 1] in self._sites:
            start -= 1
        # "edema of the left lower extremity", "pain in the chest".
        after = end
        j = end
        while j < len(norms) and j - end < 6 and norms[j] in _OF_SITE:
            j += 1
        if j > end and norms[end] in _OF_SITE - {"the", "both", "his", "her"}:
            k = j
            while k < len(norms) and norms[k] in self._sites:
                k += 1
            # "swelling of the left side" names no site: the phrase must end on a body part.
            if k > j and norms[k - 1] not in self._qualifiers:
                after = k
        if start == span.start and after == end:
            return TermMatch(span.start_char, span.end_char, span.text, term)
        specific = self._specific(norms, start, span, after, term)
        first, last = words.idx[start], words.idx[after - 1] + len(words.orth[after - 1])
        site = " ".join(
            words.orth[k]
            for k in [*range(start, span.start), *range(span.end, after)]
            if norms[k] in self._sites
        )
        return TermMatch(first, last, words.text[first:last], specific, site)

    def _specific(
        self, norms: list[str], start: int, span: Span, after: int, term: LexiconTerm
    ) -> LexiconTerm:
        # The nearest site words with the finding, as written before it or moved from after it,
        # may name a more specific concept ("pain in the chest" -> chest pain).
        head = " ".join(norms[span.start : span.end])
        before = norms[start : span.start]
        trailing = [w for w in norms[span.end : after] if w in self._sites]
        for found_words in (before, trailing):
            for i in range(len(found_words)):
                found = self._by_norm.get(" ".join([*found_words[i:], head]))
                if found is not None:
                    return found
        return term


@dataclass(frozen=True)
class _Words:
    """The attributes of a Doc's tokens the matcher reads, as lists indexed by token."""

    text: str
    orth: list[str]
    norm: list[str]
    lower: list[str]
    space: list[str]
    idx: list[int]
    is_alpha: list[bool]
    is_stop: list[bool]

    @classmethod
    def of(cls, doc: Doc) -> _Words:
        tokens = list(doc)
        orth = [t.text for t in tokens]
        space = [t.whitespace_ for t in tokens]
        return cls(
            "".join(map(str.__add__, orth, space)),  # Doc.text, without a second pass of Tokens
            orth,
            [t.norm_ for t in tokens],
            [t.lower_ for t in tokens],
            space,
            [t.idx for t in tokens],
            [t.is_alpha for t in tokens],
            [t.is_stop for t in tokens],
        )


def _after_non(words: _Words, i: int) -> bool:
    return i >= 2 and words.orth[i - 1] == "-" and words.lower[i - 2] == "non"


_CLAUSE_END = re.compile(r"[.;!?](?:\s|$)|\n")


def _context_allows(rule: Abbreviation, text: str, start: int, end: int) -> bool:
    # The words around the abbreviation within its own sentence.
    before = text[max(0, start - _CONTEXT_CHARS) : start]
    cuts = list(_CLAUSE_END.finditer(before))
    if cuts:
        before = before[cuts[-1].end() :]
    after = text[end : end + _CONTEXT_CHARS]
    stop = _CLAUSE_END.search(after)
    if stop:
        after = after[: stop.start()]
    window = before + "@" + after
    if rule.unless is not None and rule.unless.search(window):
        return False
    return rule.only_if is None or bool(rule.only_if.search(window))


# "<kind> symptoms / episodes / problems / loss / deficit / impairment ...": a finding named by
# what kind it is ("presyncopal symptoms", "syncopal episodes", "sensation loss", "memory
# impairment"); "<adjective> changes" likewise ("atherosclerotic changes"), not "dietary changes".
_GROUP_HEAD = re.compile(
    r"(?<=\s)(?:symptoms?|episodes?|problems?|spells?|attacks?|loss|deficits?|impairment|"
    r"abnormalit(?:y|ies)|dysfunction|disturbances?|difficult(?:y|ies)|sensitivit(?:y|ies)|"
    r"opacit(?:y|ies)|thickening|slowing|signs|behaviou?rs?|alterations?|defects?|issues|trouble)"
    r"(?![\w-])",
    re.IGNORECASE,
)
_GROUP_SKIP = frozenset(
    {
        "medical", "other", "multiple", "several", "many", "various", "ongoing", "current",
        "new", "similar", "further", "recurrent", "presenting", "main", "chief", "same",
        "these", "those", "such", "any", "all", "social", "financial", "family", "health",
        "medication", "compliance", "billing", "insurance", "two", "three", "few",
        "single", "short", "long", "brief", "specific", "present", "above-mentioned",
        "experience", "experiences", "experienced", "occasional", "frequent", "rare", "legal",
        "immigration", "school", "work", "marital", "particular", "major", "minor", "acute",
        "past", "prior", "previous", "earlier", "later", "typical", "blood", "technical",
        "estimated", "total", "minimal", "without", "some", "no", "spontaneous", "based",
        "observed", "claimed", "definite", "subtle", "pathologic", "apparent", "obvious",
        "noted", "gross", "focal", "endorsed", "endorses", "reported", "reports", "described",
        "describes", "denied", "denies", "had", "has", "having", "normal", "near",
        "vital", "warning", "clinical", "physical", "appropriate", "good", "sexual", "his", "her",
        "huge", "large", "small", "entire", "birth",
    }
)  # fmt: skip


# A bodily function named by its gerund is a kind too: "swallowing issues", "breathing
# problems", "sleeping difficulties" (other "-ing" words before a head are verbs: "having
# symptoms", "reporting problems").
_FUNCTION_GERUNDS = frozenset(
    {
        "swallowing", "breathing", "sleeping", "walking", "hearing", "feeding", "eating",
        "speaking", "urinating", "voiding", "chewing", "drinking", "writing", "reading",
        "learning", "thinking", "toileting", "standing", "balancing", "bleeding",
    }
)  # fmt: skip


# Functions named by their noun: "<function> issues" and "difficulty with <function>" both
# name a finding with them.
_FUNCTION_NOUNS = frozenset(
    {
        "balance", "memory", "sleep", "bowel", "bladder", "anger", "behavior", "behaviour",
        "attention", "vision", "hearing", "speech", "gait", "mood", "concentration",
        "continence", "swallow",
    }
)  # fmt: skip


# "Issues" and "trouble" are as often social, legal or surgical ("no General Surgery issues",
# "perinatal issues"): they name a finding only after a body part or a function.
_ISSUE_KINDS = _FUNCTION_GERUNDS | _FUNCTION_NOUNS | frozenset(
    {
        "weight", "behavioral", "behavioural", "visual", "urinary", "heart", "back", "stomach",
        "skin", "neck", "knee", "hip", "shoulder", "sinus", "breathing",
    }
)  # fmt: skip


_SIGNS_OF = re.compile(r"\s*(?:of\b|/)")
_CLOSURE = re.compile(r"clos|repair|reapproximat|fill|sutur", re.IGNORECASE)


def _group_phrases(text: str) -> list[TermMatch]:
    # The one word before the head names the kind ("presyncopal", "disk"); a word further back
    # is as often a verb ("reports presyncopal symptoms"), and adverbs and verb forms
    # ("actually symptoms", "having symptoms") are not kinds.
    found = []
    for m in find_headed_phrases(text, _GROUP_HEAD, _GROUP_SKIP):
        *_, kind, head = m.text.lower().split()
        if kind.endswith("'s") or (head == "signs" and _SIGNS_OF.match(text, m.end)):
            continue  # "the patient's behavior"; "signs of tamponade" names its finding after
        if head in ("issues", "trouble") and kind not in _ISSUE_KINDS:
            continue
        if head.startswith("defect") and _CLOSURE.search(text, max(0, m.start - 40), m.end + 30):
            continue  # "closed the fascial defects": the gap an operation leaves
        # "cutting behaviors", "drug-seeking behavior": a behaviour is named by what is done.
        doing = kind.endswith("ing") and head.startswith("behav")
        if not kind.endswith(("ly", "ing")) or doing or kind in _FUNCTION_GERUNDS:
            kind = m.text.split()[-2]
            start = text.rindex(kind, m.start, m.end)
            surface = text[start : m.end]
            normalized = " ".join(surface.lower().split())
            term = LexiconTerm(normalized, normalized, None, "finding", False)
            found.append(TermMatch(start, m.end, surface, term))
    return found


_CHANGES = re.compile(
    r"(?<![\w-])(?P<mod>[A-Za-z]+(?:ic|ive|al|ous|ory|otic|atous|ar))\s+changes?(?![\w-])",
    re.IGNORECASE,
)
_NOT_CHANGE_FINDINGS = frozenset(
    {
        "dietary", "behavioral", "behavioural", "medical", "additional", "minimal", "several",
        "postural", "positional", "interval", "seasonal", "significant", "major", "minor",
        "dramatic", "physical", "environmental", "educational", "occupational", "total",
        "general", "potential", "electrical", "nutritional", "structural", "functional",
        "similar", "regular", "particular", "familiar", "popular",
    }
)  # fmt: skip
# Electrocardiogram wording: "ST-T wave changes", "nonspecific ST changes", "T-wave abnormalities".
_WAVE_CHANGES = re.compile(
    r"(?<![\w-])(?:(?:ST-T|ST)(?:[- ]waves?|[- ]segments?)?|T[- ]waves?)\s+"
    r"(?:changes?|abnormalit(?:y|ies))(?![\w-])"
)


# "<abnormal qualifier> <what is abnormal>": the way an observation is written as a finding
# ("decreased breath sounds", "elevated troponins", "poor sleep", "absent pedal pulses",
# "dilated bowel loops", "purulent drainage").
# The object is one to three words up to a function word or punctuation, so "decreased the
# dose" and "increased to 20 mg" give nothing; a drug or a number named there wins (the
# pipeline drops a generic finding that overlaps a medication or measurement).
_QUALIFIED = re.compile(
    r"(?<![\w-])(?P<q>decreased|diminished|reduced|impaired|absent|elevated|raised|increased|"
    r"poor|abnormal|depressed|slowed|loss of|lack of|dilated|thickened|enlarged|distended|"
    r"swollen|inflamed|irregular|loose|purulent|bloody|redundant|low-grade|high-grade|"
    r"increasing|worsening|inverted|fluctuating|ruptured|torn|perforated|infected|necrotic|"
    r"ulcerated|poorly controlled|uncontrolled|boggy|hypertrophied)\s+"
    r"(?P<obj>[A-Za-z][A-Za-z-]*(?:\s+[A-Za-z][A-Za-z-]*){0,2})",
    re.IGNORECASE,
)
_QUALIFIED_STOP = frozenset(
    {
        "dose", "doses", "dosage", "risk", "risks", "chance", "likelihood", "frequency",
        "amount", "number", "level", "levels", "rate", "interest", "activity", "use", "intake",
        "compliance", "access", "patient", "patients", "bed", "fluids", "appetite",
        "seen", "noted", "identified", "present", "consistent", "located", "suggesting",
        "suggestive", "compatible", "bilateral", "bilaterally", "throughout", "somewhat",
        "overnight", "today", "yesterday", "tonight", "again", "now", "since", "recently",
        "earlier", "having",
    }
)  # fmt: skip


# "dilated fundus examination", "loose debris": the qualifier describes a procedure or material.
_NOT_OBJECTS = frozenset(
    {"exam", "examination", "examinations", "fundus", "debris", "evaluation", "portion"}
)


def _object_end(text: str, m: re.Match[str], not_objects: frozenset[str]) -> int | None:
    """Where the object of a qualifier match ends: its words up to a function word, a stop word
    or an adverb; None when it has none, names something in ``not_objects`` or is not written
    with single spaces."""
    words = []
    for word in m.group("obj").split():
        lower = word.lower()
        if lower in STOP_WORDS or lower in _QUALIFIED_STOP or lower.endswith("ly"):
            break
        words.append(word)
    if not words or any(w.lower() in not_objects for w in words):
        return None
    end = m.start("obj") + len(" ".join(words))
    return end if text[m.start("obj") : end] == " ".join(words) else None


def _qualified_findings(text: str) -> list[TermMatch]:
    found = []
    for m in _QUALIFIED.finditer(text):
        end = _object_end(text, m, _NOT_OBJECTS)
        if end is not None:
            found.append(_as_generic(text, m.start(), end))
    return found


# The same written the other way round, a change named before what it changed: "increase in
# arterial pressure", "elevation of white count", "drop in hemoglobin". What changed must be a
# measured quantity, so "elevation of the leg", "reduction of the fracture" and "increase in the
# dose" give nothing.
_CHANGE_OF = re.compile(
    r"(?<![\w-])(?P<q>increases?|elevations?|decreases?|drops?|rises?|worsening|decline|changes?)"
    r"\s+(?:in|of)\s+(?:(?:his|her|their|the|a)\s+)?"
    # A lookahead, so the words read past the object ("vision and change") stay free for the
    # next match ("change in his vision and change in bowel habits").
    r"(?=(?P<obj>[A-Za-z][A-Za-z-]*(?:\s+[A-Za-z][A-Za-z-]*){0,2}))",
    re.IGNORECASE,
)
_MEASURED = frozenset(
    {
        "pressure", "pressures", "count", "counts", "temperature", "enzymes", "enzyme",
        "velocity", "velocities", "gradient", "gradients", "creatinine", "bilirubin", "glucose",
        "sugar", "sugars", "troponin", "troponins", "lactate", "potassium", "sodium", "calcium",
        "hemoglobin", "hematocrit", "platelets", "weight", "girth", "size", "output",
        "function", "appetite", "tone", "strength", "sensation",
        "vision", "hearing", "acuity", "wbc", "bun", "ast", "alt", "inr", "psa", "esr", "crp",
        "amylase", "lipase", "ammonia", "ferritin", "titer", "titers", "markers", "ldh",
        "cholesterol", "triglycerides", "a1c", "ck", "cpk", "tsh", "d-dimer", "lft", "lfts",
    }
)  # fmt: skip


# "change in bowel habits", "changes in her mood": a change alone is a finding only in a bodily
# function or behaviour, never in a measured quantity ("no change in blood pressure" is stable).
_CHANGEABLE = frozenset(
    {
        "habits", "habit", "vision", "voice", "status", "behavior", "behaviour", "mood",
        "personality", "sleep", "memory", "gait", "speech", "stool", "stools", "cognition",
        "continence", "libido", "handwriting", "thinking", "bowel", "bowels",
    }
)  # fmt: skip


# "PSA elevation", "troponin increase": the change written after the quantity.
_QUANTITY_CHANGE = re.compile(
    r"(?<=[A-Za-z0-9])\s+(?:elevations?|increases?|decreases?|drops?)(?![\w-])", re.IGNORECASE
)
_WORD_BEFORE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9-]*$")
_CHANGE_WORDS = (
    "increase", "elevation", "decrease", "drop", "rise", "worsening", "decline", "change",
)  # fmt: skip


def _scan(pattern: re.Pattern[str], text: str, keys: tuple[str, ...]) -> Iterator[re.Match[str]]:
    # Most notes lack the rarer key words: a substring test is far cheaper than a regex scan.
    low = text.lower()
    return pattern.finditer(text) if any(k in low for k in keys) else iter(())


def _changes_of(text: str) -> list[TermMatch]:
    found = []
    for m in _scan(_CHANGE_OF, text, _CHANGE_WORDS):
        words = []
        for word in m.group("obj").split():
            if word.lower() in STOP_WORDS:
                break
            words.append(word)
        # The phrase ends on its last measured word: "increase in blood pressure readings"
        # keeps "blood pressure".
        changed = _CHANGEABLE if m.group("q").lower().startswith("change") else _MEASURED
        last = max((i for i, w in enumerate(words) if w.lower() in changed), default=-1)
        if last < 0:
            continue
        end = m.start("obj") + len(" ".join(words[: last + 1]))
        if text[m.start("obj") : end] != " ".join(words[: last + 1]):
            continue  # the words were not separated by single spaces
        surface = text[m.start() : end]
        normalized = " ".join(surface.lower().split())
        term = LexiconTerm(normalized, normalized, None, "finding", False)
        found.append(TermMatch(m.start(), end, surface, term))
    for m in _scan(_QUANTITY_CHANGE, text, _CHANGE_WORDS):
        word = _WORD_BEFORE.search(text, max(0, m.start() - 30), m.start())
        if word is not None and word.group(0).lower() in _MEASURED:
            found.append(_as_generic(text, word.start(), m.end()))
    return found


# A finding written as a predicate of what is abnormal: "TSH was quite elevated", "her energy
# level is extremely low", "insight is poor", "his desire has been slightly decreased". The
# subject must be a measured quantity or a function, so "the foot was elevated" (positioning)
# and "the dose was decreased" give nothing; "was not decreased" gives nothing either.
_PREDICATE = re.compile(
    r"(?<![\w-])(?:is|was|were|are|been|remains|remained|seems|seemed|appears|appeared|became)"
    r"\s+(?:(?:[a-z]+ly|quite|very|somewhat|still|also|now|a\s+little|a\s+bit)\s+)*"
    r"(?P<q>low|decreased|diminished|reduced|elevated|increased|high|impaired|poor|abnormal|"
    r"depressed|worse|limited|absent|weak|slowed|labile|flat|blunted|constricted)(?![\w-])",
    re.IGNORECASE,
)
_PREDICATE_KEYS = (
    "low", "decreas", "diminish", "reduc", "elevat", "increas", "high", "impair", "poor",
    "abnormal", "depress", "worse", "limit", "absent", "weak", "slow", "labile", "flat", "blunt",
    "constrict",
)  # fmt: skip
_SUBJECT_BEFORE = re.compile(
    r"(?<![\w-])(?P<subj>[A-Za-z][A-Za-z0-9-]*)(?:\s+levels?)?\s+(?:(?:has|have|had)\s+)?$"
)
_STATES = _MEASURED | frozenset(
    {
        "energy", "motivation", "desire", "libido", "drive", "memory", "concentration",
        "attention", "mood", "affect", "interest", "insight", "judgment", "judgement", "recall",
        "cognition", "endurance", "stamina", "balance", "coordination", "intake", "pulses",
        "reflexes", "fluency", "comprehension", "naming", "alertness", "responsiveness",
    }
)  # fmt: skip


def _predicates(text: str) -> list[TermMatch]:
    found = []
    for m in _scan(_PREDICATE, text, _PREDICATE_KEYS):
        before = _SUBJECT_BEFORE.search(text, max(0, m.start() - 40), m.start())
        if before is not None and before.group("subj").lower() in _STATES:
            found.append(_as_generic(text, before.start(), m.end()))
    return found


# "feelings of guilt", "feeling of hopelessness": the way a mood or thought is reported.
_FEELINGS = re.compile(
    r"(?<![\w-])feelings?\s+of\s+(?:(?:extreme|intense|great|some|being)\s+)?"
    r"(?P<obj>[A-Za-z][A-Za-z-]+)(?![\w-])",
    re.IGNORECASE,
)
# An examination sign or test named after its author and found positive: "positive Lachman's
# exam", "positive Tinel's sign", "Homans' sign", "positive straight leg raise".
_POSITIVE_SIGN = re.compile(
    r"(?<![\w-])(?:positive\s+(?:[A-Z][a-z]+(?:'s?|s')?\s+){1,2}(?:signs?|tests?|exam|examination|"
    r"maneuver|testing)|positive\s+straight[- ]leg[- ]rais\w*|"
    r"(?P<names>[A-Z][a-z]+(?:'s?|s')?(?:,?\s+(?:or|and|,)\s+[A-Z][a-z]+(?:'s|s')?)*)\s+signs?)"
    r"(?![\w-])"
)


# What a body part or a body product looks like, when that is abnormal: "black stools", "thick
# meconium", "foul-smelling urine", "oily skin", "bald spots". "Dark" only of what is passed
# ("dark urine"), never of skin or hair; normal looks ("dry", "clear", "warm", "pink") are left out.
_LOOKS = re.compile(
    r"(?<![\w-])(?:(?:thin|thick|oily|pale|mottled|clammy|tarry|black|foul[- ]smelling|"
    r"malodorous|frothy|cloudy|bald|scaly|flaky|greasy|yellowish|greenish|blood-tinged)\s+"
    r"(?:stools?|urine|sputum|skin|hair|nails?|meconium|secretions?|mucus|spots?|patch(?:es)?|"
    r"discharge|drainage|emesis|vomitus|scalp)|dark\s+(?:stools?|urine|emesis|vomitus))(?![\w-])",
    re.IGNORECASE,
)
_LOOKS_KEYS = (
    "stool", "urine", "sputum", "skin", "hair", "nail", "meconium", "secretion", "mucus",
    "spot", "patch", "discharge", "drainage", "emesis", "vomitus", "scalp",
)  # fmt: skip


def _pattern_findings(text: str) -> list[TermMatch]:
    found = [_as_generic(text, m.start(), m.end()) for m in _scan(_LOOKS, text, _LOOKS_KEYS)]
    for m in _scan(_FEELINGS, text, ("feeling",)):
        if m.group("obj").lower() not in STOP_WORDS:
            found.append(_as_generic(text, m.start(), m.end()))
    for m in _scan(_POSITIVE_SIGN, text, ("sign", "positive")):
        names = m.group("names")
        if names is not None and (
            names.split()[0].lower() in STOP_WORDS | _GROUP_SKIP | {"negative", "positive"}
            or _NEGATIVE_BEFORE.search(text, max(0, m.start() - 10), m.start())
            or _NEGATIVE_AFTER.match(text, m.end())
        ):
            continue  # "Vital signs"; "negative Spurling sign", "Homans sign is negative"
        found.append(_as_generic(text, m.start(), m.end()))
    # Findings without a concept of their own in the vocabulary, written bare: "pus", "a
    # fistula", "the fistulous tract", "loculations", "plaques", "neurocutaneous stigmata".
    for m in _scan(_BARE, text, _BARE_KEYS):
        if not _ACCESS_FISTULA.search(text, max(0, m.start() - 16), m.start()) and not (
            _ACCESS_FISTULA_AFTER.match(text, m.end())
        ):
            found.append(_as_generic(text, m.start(), m.end()))
    # "misuse of prescribed opiates": the drug keeps its own entity, the misuse is the finding.
    for m in _scan(_MISUSE, text, ("misuse", "overuse", "overdose")):
        found.append(_as_generic(text, m.start(), m.end()))
    return found


# A process of disease named with the structure it changes: "effacement of the subarachnoid
# space", "prominence of the gallbladder", "narrowing of the canal", "slowing of motor skills".
# The nouns are those of a change in shape, size or function that an operation does not make,
# so "compression of the wound", "retraction of the muscle" and "dilation of the cervix" (steps
# of a procedure) give nothing; what is changed is one to three words up to a function word.
_PROCESS_OF = re.compile(
    r"(?<![\w-])(?P<q>(?:effacement|prominence|narrowing|widening|thickening|enlargement|"
    r"tortuosity|asymmetry|obliteration|atrophy|erosion|herniation|prolapse|flattening|"
    r"blunting|opacification|hypertrophy|irregularity|irregularities|deformity|deformities|"
    r"shortening|slowing|calcification|destruction|collapse|distortion|attenuation)\s+of|"
    r"limitations?\s+(?:of|in|to))\s+(?:(?:the|his|her|their|both)\s+)?"
    r"(?P<obj>[A-Za-z][A-Za-z-]*(?:\s+[A-Za-z][A-Za-z-]*){0,2})",
    re.IGNORECASE,
)
_PROCESS_KEYS = (
    "effac", "promin", "narrow", "widen", "thicken", "enlarge", "tortuo", "asymmetr", "obliter",
    "atroph", "erosion", "herniat", "prolapse", "flatten", "blunting", "opacif", "hypertroph",
    "irregular", "deformit", "shorten", "slowing", "calcific", "destruct", "collapse",
    "distort", "attenuat", "limitation",
)  # fmt: skip
# Objects that make the phrase a procedure's or a report's, not the patient's.
_NOT_PROCESS_OBJECTS = frozenset(
    {
        "incision", "wound", "differential", "dose", "doses", "activity", "activities",
        "study", "image", "images", "exam", "examination", "evaluation", "technique",
        "procedure", "view", "views", "diet", "care",
    }
)  # fmt: skip


_NORMAL_BEFORE = re.compile(r"normal\s+$", re.IGNORECASE)


def _processes_of(text: str) -> list[TermMatch]:
    found = []
    for m in _scan(_PROCESS_OF, text, _PROCESS_KEYS):
        if _NORMAL_BEFORE.search(text, max(0, m.start() - 10), m.start()):
            continue  # "normal thickening of the left ventricle": a wall's systolic thickening
        end = _object_end(text, m, _NOT_PROCESS_OBJECTS)
        if end is not None:
            found.append(_as_generic(text, m.start(), end))
    return found


# The colour of the eye's and the mouth's linings, a sign of anaemia, jaundice or inflammation:
# "pale conjunctivae", "icteric sclerae", "injected conjunctiva", "erythematous mucosa".
_LININGS = re.compile(
    r"(?<![\w-])(?:pale|pallid|icteric|injected|erythematous|hyperemic|dry)\s+"
    r"(?:conjunctivae?|conjunctival|sclerae?|scleras|mucosa|mucosal|mucous\s+membranes?|"
    r"oral\s+mucosa|lips|nail\s*beds?|palpebral\s+conjunctivae?)(?![\w-])",
    re.IGNORECASE,
)
_LINING_KEYS = ("conjunctiv", "sclera", "mucosa", "mucous", "lips", "nail")

# A function named with its decline: "visual decline", "cognitive deterioration", "gait
# hesitancy", "memory impairment", "motor slowing".
_FUNCTION_DECLINE = re.compile(
    r"(?<![\w-])(?:visual|vision|cognitive|functional|memory|hearing|mental|physical|motor|"
    r"neurologic|neurological|renal|gait|speech|mood|behavioral|behavioural)\s+"
    r"(?:decline|deterioration|slowing|hesitancy|impairment|worsening|regression|lability|"
    r"variation|disturbance|disturbances)(?![\w-])",
    re.IGNORECASE,
)
_DECLINE_KEYS = (
    "decline", "deterior", "slowing", "hesitancy", "impairment", "worsening", "regression",
    "lability", "variation", "disturbance",
)  # fmt: skip

# A laboratory test found positive, an abnormal result: "positive nitrites", "blood cultures
# were positive", "GBS screen positive", "positive for occult blood". Negative results are
# normal ones and give nothing.
_ANALYTES = (
    r"(?:nitrites?|leukocyte\s+esterase|(?:blood|urine|sputum|wound|stool|throat)\s+cultures?|"
    r"cultures?|GBS(?:\s+screen)?|group\s+B\s+strep(?:tococcus)?|strep(?:\s+screen|\s+test)?|"
    r"ANA|PPD|hemoccult|guaiac|occult\s+blood|troponins?|ketones|HIV|hepatitis\s+[A-E]|RPR|"
    r"VDRL|chlamydia|gonorrhea|MRSA|influenza(?:\s+[AB])?|RSV|COVID(?:-19)?|Coombs|ANCA|"
    r"rheumatoid\s+factor|D-dimer|C\.\s*diff(?:icile)?|Clostridium\s+difficile)"
)
# Read around each "positive": the analyte alternation is too long to try at every character.
_POSITIVE = re.compile(r"(?<![\w-])positive(?![\w-])", re.IGNORECASE)
_POSITIVE_FOR = re.compile(rf"\s+(?:for\s+)?{_ANALYTES}(?![\w-])", re.IGNORECASE)
_POSITIVE_SUBJECT = re.compile(
    rf"(?<![\w-]){_ANALYTES}\s+(?:(?:screen|test|titer|testing)\s+)?"
    r"(?:(?:was|were|is|are|came\s+back)\s+)?(?:strongly\s+|weakly\s+)?$",
    re.IGNORECASE,
)


def _positive_results(text: str) -> list[TermMatch]:
    found = []
    for m in _scan(_POSITIVE, text, ("positive",)):
        after = _POSITIVE_FOR.match(text, m.end())
        if after is not None:
            found.append(_as_generic(text, m.start(), after.end()))
            continue
        before = _POSITIVE_SUBJECT.search(text, max(0, m.start() - 60), m.start())
        if before is not None:
            found.append(_as_generic(text, before.start(), m.end()))
    return found


def _more_patterns(text: str) -> list[TermMatch]:
    found = _processes_of(text) + _positive_results(text)
    for pattern, keys in ((_LININGS, _LINING_KEYS), (_FUNCTION_DECLINE, _DECLINE_KEYS)):
        found += [_as_generic(text, m.start(), m.end()) for m in _scan(pattern, text, keys)]
    return found


# A medical word written with a hyphen ("sacro-iliitis", "peri-implantitis"); the word-ending
# rule of ``find_generic_problems`` takes unhyphenated words only.
_HYPHENATED = re.compile(r"(?<![\w-])[A-Za-z]{2,}(?:-[A-Za-z]{2,})+(?![\w-])")
_BARE_KEYS = (
    "pus", "fistul", "loculat", "plaque", "stigmata", "polyp", "mental status", "concrete",
    "psychomotor", "miscarriage", " blood", "turbinate", "disequilibrium", "aura", " fluid",
    "collection", "excoriation",
)  # fmt: skip
_BARE = re.compile(
    r"(?<![\w-])(?:pus|fistulae?|fistulas|fistulous tracts?|loculations?|loculated|plaques?|"
    r"stigmata|polyps?|(?:altered\s+)?mental status changes?|altered mental status|"
    r"concreteness|psychomotor (?:excitement|retardation|agitation|slowing)|miscarriages?|"
    r"(?:subarachnoid|intraventricular|subdural|epidural|intraparenchymal|intraperitoneal|free)"
    r" blood|(?:large|enlarged|hypertrophied|hypertrophic|boggy|swollen)"
    r"(?: inferior| middle)? turbinates?|disequilibrium|auras?|(?:peri[a-z]+|free|pelvic|"
    r"subphrenic|intraperitoneal|retroperitoneal) fluid|(?:extra-axial|fluid) collections?|"
    r"excoriations?)"
    r"(?![\w-])",
    re.IGNORECASE,
)
# A dialysis access fistula is made on purpose: "AV fistula", "loop fistula graft".
_ACCESS_FISTULA = re.compile(r"(?:\bAV|A-V|arteriovenous|loop|dialysis|radiocephalic)\s+$", re.I)
_ACCESS_FISTULA_AFTER = re.compile(
    r"\s+(?:grafts?|placements?|creation|access|revision|site|needles?)\b", re.IGNORECASE
)
_NEGATIVE_BEFORE = re.compile(r"negative\s+$", re.IGNORECASE)
_NEGATIVE_AFTER = re.compile(r"\s+(?:is\s+|was\s+|were\s+)?(?:negative|absent)\b", re.IGNORECASE)
_MISUSE = re.compile(r"(?<![\w-])(?:misuse|overuse|overdose)(?=\s+of\b)", re.IGNORECASE)


def _as_generic(text: str, start: int, end: int) -> TermMatch:
    surface = text[start:end]
    normalized = " ".join(surface.lower().split())
    return TermMatch(
        start, end, surface, LexiconTerm(normalized, normalized, None, "finding", False)
    )


# "difficulty swallowing", "trouble breathing", "difficulty with walking", "difficulty in
# walking"; "difficulty with (her) balance / memory / concentration": a function named by its
# noun, as for "<function> issues", not "difficulty with the insurance" or "with the dose".
_DIFFICULTY_WITH = _FUNCTION_NOUNS | frozenset(
    {
        "coordination", "cognition", "cognitive", "comprehension", "focus", "urination",
        "micturition", "ambulation", "mobility", "bowels", "breath", "erection", "erections",
    }
)  # fmt: skip
_DIFFICULTY = re.compile(
    r"(?<![\w-])(?:difficulty|difficulties|trouble)\s+(?:(?:with|in)\s+)?[A-Za-z]+ing(?![\w-])"
    r"|(?<![\w-])(?:difficulty|difficulties|trouble)\s+(?:with|in)\s+(?:(?:his|her|their)\s+)?"
    rf"(?:{'|'.join(sorted(_DIFFICULTY_WITH))})(?![\w-])",
    re.IGNORECASE,
)


def _difficulties(text: str) -> list[TermMatch]:
    found = []
    for m in _DIFFICULTY.finditer(text):
        normalized = " ".join(m.group(0).lower().split())
        term = LexiconTerm(normalized, normalized, None, "finding", False)
        found.append(TermMatch(m.start(), m.end(), m.group(0), term))
    return found


def find_generic_findings(text: str) -> list[TermMatch]:
    """Findings named by form rather than by the vocabulary (see ``find_generic_problems``),
    plus "<kind> symptoms/episodes/problems", "<adjective> changes", "<abnormal qualifier>
    <observation>" and "difficulty <doing>" phrases."""
    found = find_generic_problems(text) + _group_phrases(text) + _qualified_findings(text)
    found += [
        _as_generic(text, m.start(), m.end())
        for m in _scan(_HYPHENATED, text, ("-",))
        if m.group(0).lower().endswith(MEDICAL_ENDINGS)
        and m.group(0).lower().rsplit("-", 1)[1] not in NOT_FINDING_WORDS
    ]
    found = [m for m in found if not _PREVENTION_AFTER.match(text, m.end)]
    found += _difficulties(text) + _changes_of(text) + _pattern_findings(text)
    found += _predicates(text) + _more_patterns(text)
    for m in _scan(_WAVE_CHANGES, text, ("change", "abnormalit")):
        normalized = " ".join(m.group(0).lower().split())
        term = LexiconTerm(normalized, normalized, None, "finding", False)
        found.append(TermMatch(m.start(), m.end(), m.group(0), term))
    for m in _scan(_CHANGES, text, ("change",)):
        if m.group("mod").lower() not in _NOT_CHANGE_FINDINGS:
            surface = m.group(0)
            normalized = " ".join(surface.lower().split())
            term = LexiconTerm(normalized, normalized, None, "finding", False)
            found.append(TermMatch(m.start(), m.end(), surface, term))
    return found
