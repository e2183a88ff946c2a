"""Evaluation of the note reader on the MTSamples development split.

Run ``python -m bench.nlp_eval``. It scores medication extraction in list sections and the
negation flag against the hand-labelled gold in ``bench/data/nlp_gold/``, ROUGE-L of the one-note
summary against each note's ``description`` next to lead-1/lead-3 baselines, pipeline throughput
and load time, and the time to summarise a 40-note patient. Method: ``docs/nlp-evaluation.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLD_DIR = Path(__file__).resolve().parent / "data" / "nlp_gold"
NOTES_CSV = ROOT.parent / "shared" / "data" / "notes" / "mtsamples_dev.csv"
COHORT_PATIENTS = 40
COHORT_TODAY = dt.date(2026, 1, 1)

# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens, as the ``rouge-score`` tokenizer makes them (no stemming)."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (O(len(a)*len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and their harmonic mean (F1)."""

    precision: float
    recall: float
    f1: float


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0."""
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def rouge_l(candidate: str, reference: str) -> PRF:
    """Sentence-level ROUGE-L (Lin 2004, section 3.1) with beta = 1.

    Precision is LCS / candidate length, recall LCS / reference length. Empty inputs score 0.
    """
    c, r = rouge_tokens(candidate), rouge_tokens(reference)
    if not c or not r:
        return PRF(0.0, 0.0, 0.0)
    lcs = lcs_length(c, r)
    p, rec = lcs / len(c), lcs / len(r)
    return PRF(p, rec, f_measure(p, rec))


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Precision, recall and F1 from counts; an empty denominator gives 0."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return PRF(p, r, f_measure(p, r))


_SALT_WORDS = frozenset(
    [
        "hydrochloride",
        "hcl",
        "hydrobromide",
        "tartrate",
        "succinate",
        "besylate",
        "maleate",
        "mesylate",
        "fumarate",
        "conjugated",
        "xl",
        "er",
        "sr",
        "la",
        "cr",
        "xr",
        "dr",
        "extended",
        "release",
    ]
)
# Other names of the same substance, mapped to the name the gold uses: INN vs USAN/BAN
# equivalents (WHO INN lists; USP dictionary) and chemical names a drug lexicon may return.
SYNONYMS: dict[str, str] = {
    "thyroxine": "levothyroxine",
    "l-thyroxine": "levothyroxine",
    "ergocalciferol": "vitamin d",
    "cholecalciferol": "vitamin d",
    "dioctyl sulfosuccinic acid": "docusate",
    "erythropoietin": "epoetin alfa",
    "epoetin": "epoetin alfa",
    "clavulanic acid": "clavulanate",
    "estrogen": "estrogens",
    "acetylsalicylic acid": "aspirin",
    "paracetamol": "acetaminophen",
    "salbutamol": "albuterol",
    "levosalbutamol": "levalbuterol",
    "frusemide": "furosemide",
    "glibenclamide": "glyburide",
    "pethidine": "meperidine",
    "adrenaline": "epinephrine",
    "noradrenaline": "norepinephrine",
    "vitamin k": "phytonadione",
    "vitamin k1": "phytonadione",
    "phylloquinone": "phytonadione",
    "lignocaine": "lidocaine",
    "carnitine": "levocarnitine",
    "valproate": "valproic acid",
    "mycophenolate mofetil": "mycophenolate",
    "mycophenolic acid": "mycophenolate",
    "ciclosporin": "cyclosporine",
    "amfetamine": "amphetamine",
    "dexamfetamine": "dextroamphetamine",
    "co-trimoxazole": "sulfamethoxazole/trimethoprim",
    "trimethoprim-sulfamethoxazole": "sulfamethoxazole/trimethoprim",
    "polyethylene glycols": "polyethylene glycol",
    "macrogol": "polyethylene glycol",
    "glyceryl trinitrate": "nitroglycerin",
    "vitamin b1": "thiamine",
    "ascorbic acid": "ascorbic acid",
    "vitamin c": "ascorbic acid",
}


def drug_components(name: str) -> frozenset[str]:
    """A drug name's ingredients, lower-cased, salts, release forms and synonyms resolved.

    ``"Hydrocodone/Acetaminophen"`` gives ``{"hydrocodone", "acetaminophen"}``;
    ``"metoprolol succinate"`` gives ``{"metoprolol"}``; ``"thyroxine"`` gives
    ``{"levothyroxine"}``.
    """
    lowered = name.lower().strip()
    lowered = SYNONYMS.get(lowered, lowered)
    parts = re.split(r"\s*(?:/|\+|,| and | with )\s*", lowered)
    found = set()
    for part in parts:
        part = SYNONYMS.get(part.strip(), part.strip())
        words = [w for w in re.split(r"[\s-]+", part) if w and w not in _SALT_WORDS]
        if words:
            joined = " ".join(words)
            found.add(SYNONYMS.get(joined, joined))
    return frozenset(found)


def names_match(predicted: str, gold: str) -> bool:
    """Whether a predicted generic name denotes (one ingredient of) a gold generic name.

    Components match when equal or when one is a word prefix of the other, so ``insulin``
    matches ``insulin glargine``.
    """
    for p in drug_components(predicted):
        for g in drug_components(gold):
            if p == g or g.startswith(p + " ") or p.startswith(g + " "):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Gold and notes
# ---------------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_notes(path: Path = NOTES_CSV) -> dict[str, dict[str, str]]:
    return {row["note_id"]: row for row in read_csv(path)}


@dataclass
class GoldSection:
    note_id: str
    start: int
    end: int
    required: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)


def load_medication_gold(gold_dir: Path = GOLD_DIR) -> list[GoldSection]:
    sections = {
        (r["note_id"], int(r["start"])): GoldSection(r["note_id"], int(r["start"]), int(r["end"]))
        for r in read_csv(gold_dir / "medication_sections.csv")
        if r["included"] == "yes"
    }
    for item in read_csv(gold_dir / "medications.csv"):
        section = sections[(item["note_id"], int(item["section_start"]))]
        target = section.required if item["tier"] == "required" else section.optional
        target.append(item["generic"])
    return list(sections.values())


# ---------------------------------------------------------------------------------------------
# Medication extraction
# ---------------------------------------------------------------------------------------------


@dataclass
class SectionScore:
    tp: int
    fp: int
    fn: int
    false_positives: list[str]
    missed: list[str]


def score_section(predicted: Iterable[str], section: GoldSection) -> SectionScore:
    """Set-based scoring of one list section on generic names.

    Each distinct required gold drug found is a true positive, each one not found a false
    negative; each distinct predicted name matching no gold drug (required or optional) is a
    false positive. Optional gold drugs are neither rewarded nor penalised.
    """
    preds = sorted({p.lower() for p in predicted if p})
    required = sorted({g.lower() for g in section.required})
    optional = {g.lower() for g in section.optional}
    found = [g for g in required if any(names_match(p, g) for p in preds)]
    missed = [g for g in required if g not in found]
    false_pos = [p for p in preds if not any(names_match(p, g) for g in (*required, *optional))]
    return SectionScore(len(found), len(false_pos), len(missed), false_pos, missed)


def medication_eval(
    sections: list[GoldSection], analyses: dict[str, Any]
) -> tuple[PRF, list[tuple[str, SectionScore]]]:
    tp = fp = fn = 0
    per_section = []
    for section in sections:
        analysis = analyses[section.note_id]
        names = [
            e.normalized or e.text
            for e in analysis.entities
            if e.label == "medication" and section.start <= e.start < section.end
        ]
        score = score_section(names, section)
        tp, fp, fn = tp + score.tp, fp + score.fp, fn + score.fn
        per_section.append((section.note_id, score))
    return prf(tp, fp, fn), per_section


# ---------------------------------------------------------------------------------------------
# Negation
# ---------------------------------------------------------------------------------------------

# A small NegEx (Chapman et al., J Biomed Inform 2001;34:301) as the naive baseline: a trigger
# up to five tokens before the target, or a post-trigger just after it, with the scope cut at
# a conjunction. Pseudo-triggers are skipped.
_PRE = re.compile(
    r"\b(no|not|denies|denied|denying|without|negative for|free of|absence of|never|"
    r"no evidence of|no signs? of|none|nor|unremarkable for|rules? out|ruled out)\b",
    re.IGNORECASE,
)
_PSEUDO = re.compile(
    r"\b(no change|no increase|not only|gram[- ]negative|no further|not necessarily|"
    r"without difficulty|not certain if)\b",
    re.IGNORECASE,
)
_POST = re.compile(r"^\W*(was |were |is |are )?(ruled out|unlikely|not seen|absent|none)\b", re.I)
_TERMINATE = re.compile(r"\b(but|however|although|though|except|aside from|which|yet)\b|[;:]", re.I)


def negex_negated(sentence: str, start: int, end: int) -> bool:
    """Whether a simple NegEx marks the target ``sentence[start:end]`` as negated."""
    before = sentence[:start]
    cut = list(_TERMINATE.finditer(before))
    if cut:
        before = before[cut[-1].end() :]
    before = _PSEUDO.sub(" ", before)
    window = " ".join(before.split()[-6:])
    if _PRE.search(window):
        return True
    return bool(_POST.search(sentence[end:]))


@dataclass
class NegationTarget:
    """A labelled target; ``start``/``end`` index ``sentence``, ``note_start`` the note text."""

    id: str
    source: str
    note_id: str
    sentence: str
    start: int
    end: int
    note_start: int
    negated: bool
    category: str
    hard: str
    batch: str = ""


def load_negation_gold(gold_dir: Path = GOLD_DIR) -> list[NegationTarget]:
    """The main sample (``negation.csv``) and the later held-out sample (``negation_heldout.csv``)."""
    targets = []
    rows = read_csv(gold_dir / "negation.csv")
    if (gold_dir / "negation_heldout.csv").exists():
        rows += read_csv(gold_dir / "negation_heldout.csv")
    for row in rows:
        offset = int(row["sent_start"])
        targets.append(
            NegationTarget(
                id=row["id"],
                source=row["source"],
                note_id=row["note_id"],
                sentence=row["sentence"],
                start=int(row["t_start"]) - offset,
                end=int(row["t_end"]) - offset,
                note_start=int(row["t_start"]),
                negated=row["negated"] == "yes",
                category=row["category"],
                hard=row["hard"],
                batch=row.get("batch", ""),
            )
        )
    return targets


def covering_entity(entities: Sequence[Any], start: int, end: int) -> Any | None:
    """The entity overlapping ``[start, end)`` most, or None."""
    best, best_overlap = None, 0
    for e in entities:
        overlap = min(end, e.end) - max(start, e.start)
        if overlap > best_overlap:
            best, best_overlap = e, overlap
    return best


@dataclass
class NegationResult:
    target: NegationTarget
    found: bool
    predicted: bool | None


def negation_eval(
    targets: Sequence[NegationTarget],
    analyses: dict[str, Any],
    analyse: Callable[[str], Any],
) -> list[NegationResult]:
    """The pipeline's ``negated`` flag for each target.

    Note targets are looked up in the analysis of their whole note (so sections and the
    pipeline's own sentence splitting apply); constructed sentences are analysed on their own.
    """
    results = []
    for t in targets:
        if t.note_id in analyses:
            entities = analyses[t.note_id].entities
            start = t.note_start
        else:
            entities = analyse(t.sentence).entities
            start = t.start
        entity = covering_entity(entities, start, start + (t.end - t.start))
        results.append(
            NegationResult(t, entity is not None, None if entity is None else bool(entity.negated))
        )
    return results


def accuracy(pairs: Iterable[tuple[bool | None, bool]]) -> tuple[float, int]:
    items = list(pairs)
    if not items:
        return 0.0, 0
    return sum(p == g for p, g in items) / len(items), len(items)


# ---------------------------------------------------------------------------------------------
# Finding spans
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldFinding:
    """A labelled finding: character span in the note, negation, and tier.

    ``optional`` findings (generic words such as "complications", descriptions a term list
    cannot be expected to name) are neither credited nor penalised, like optional drugs.
    """

    start: int
    end: int
    text: str
    negated: bool
    required: bool


@dataclass
class FindingSentence:
    sid: str
    split: str
    note_id: str
    start: int
    end: int
    sentence: str
    batch: str = ""
    findings: list[GoldFinding] = field(default_factory=list)


def load_finding_gold(gold_dir: Path = GOLD_DIR) -> list[FindingSentence]:
    """Sentences of ``finding_sentences.csv`` with their labelled findings (``findings.csv``)."""
    sentences = {
        r["sid"]: FindingSentence(
            r["sid"],
            r["split"],
            r["note_id"],
            int(r["sent_start"]),
            int(r["sent_end"]),
            r["sentence"],
            r.get("batch", ""),
        )
        for r in read_csv(gold_dir / "finding_sentences.csv")
    }
    for r in read_csv(gold_dir / "findings.csv"):
        sentences[r["sid"]].findings.append(
            GoldFinding(
                int(r["f_start"]),
                int(r["f_end"]),
                r["text"],
                r["negated"] == "yes",
                r["tier"] == "required",
            )
        )
    return list(sentences.values())


def _overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


@dataclass
class FindingScore:
    """Span-overlap counts for one system on a set of sentences.

    A required gold finding is recalled when some predicted problem overlaps it; a predicted
    problem is correct when it overlaps a gold finding (required or optional) and a false
    positive when it overlaps none; one overlapping only optional findings is not counted.
    Negation is scored on recalled required findings, with the prediction that overlaps most.
    """

    recalled: int = 0
    gold: int = 0
    correct: int = 0
    predicted: int = 0
    negation_right: int = 0
    negation_n: int = 0
    misses: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    negation_errors: list[str] = field(default_factory=list)


def finding_eval(sentences: Sequence[FindingSentence], analyses: dict[str, Any]) -> FindingScore:
    score = FindingScore()
    for sent in sentences:
        predicted = [
            e
            for e in analyses[sent.note_id].entities
            if e.label == "problem" and _overlaps(e.start, e.end, sent.start, sent.end)
        ]
        for g in sent.findings:
            if not g.required:
                continue
            score.gold += 1
            best = covering_entity(predicted, g.start, g.end)
            if best is None:
                score.misses.append(f"{sent.sid}: {g.text}")
                continue
            score.recalled += 1
            score.negation_n += 1
            if bool(best.negated) == g.negated:
                score.negation_right += 1
            else:
                score.negation_errors.append(f"{sent.sid}: {g.text}")
        for e in predicted:
            hits = [g for g in sent.findings if _overlaps(e.start, e.end, g.start, g.end)]
            if hits and not any(g.required for g in hits):
                continue
            score.predicted += 1
            if hits:
                score.correct += 1
            else:
                score.false_positives.append(f"{sent.sid}: {e.text}")
    return score


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (0, 0) when ``n`` is 0."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _ratio(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{_pct(k / n if n else 0.0)} ({k}/{n}; 95% CI {lo:.2f}-{hi:.2f})"


def legacy_pipeline() -> Any:
    """The same pipeline with the hand-made ``problems.csv`` lexicon as its problem matcher."""
    import dataclasses

    from nlp.pipeline import load_pipeline
    from nlp.problems import TermMatcher, find_generic_problems, load_terms

    pipe = load_pipeline()
    return dataclasses.replace(
        pipe,
        problems=TermMatcher(pipe.nlp, load_terms("problems.csv")),
        generic_problems=find_generic_problems,
    )


# ---------------------------------------------------------------------------------------------
# One-note summaries
# ---------------------------------------------------------------------------------------------


def lead(analysis: Any, k: int) -> str:
    return " ".join(s.text for s in analysis.sentences[:k])


@dataclass
class RougeRow:
    note_id: str
    summary: float
    lead1: float
    lead3: float


def rouge_eval(
    notes: dict[str, dict[str, str]],
    analyses: dict[str, Any],
    summarise_note: Callable[..., list[Any]],
) -> list[RougeRow]:
    rows = []
    for note_id, note in notes.items():
        reference = note["description"]
        analysis = analyses[note_id]
        if not reference.strip() or not analysis.sentences:
            continue
        chosen = summarise_note(note["transcription"], 1, analysis=analysis)
        summary = " ".join(s.text for s in chosen)
        rows.append(
            RougeRow(
                note_id,
                rouge_l(summary, reference).f1,
                rouge_l(lead(analysis, 1), reference).f1,
                rouge_l(lead(analysis, 3), reference).f1,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

_LOAD_SNIPPET = (
    "import time; t = time.perf_counter(); from nlp.pipeline import analyse; "
    "analyse('No chest pain. Lisinopril 10 mg daily.'); print(time.perf_counter() - t)"
)


_VOCABULARY_SNIPPET = """
import time, spacy
from nlp.segment import ClinicalTokenizer
from nlp.vocabulary import FindingMatcher, load_abbreviations, load_vocabulary, use_normalised_norms

def rss():
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * 4096
nlp = spacy.blank('en')
use_normalised_norms(nlp)
nlp.tokenizer = ClinicalTokenizer(nlp.vocab)
before = rss()
t = time.perf_counter()
matcher = FindingMatcher(nlp, load_vocabulary(), load_abbreviations())
seconds = time.perf_counter() - t
after = rss()
from nlp.pipeline import load_pipeline
load_pipeline()
print(after - before, seconds, rss())
"""


def vocabulary_footprint() -> tuple[float, float, float]:
    """In a fresh interpreter: MB of memory the loaded finding vocabulary takes (resident-set
    growth while reading the file and building its matcher), seconds to build it, and MB of the
    whole process once the full pipeline is loaded as well."""
    out = subprocess.run(
        [sys.executable, "-c", _VOCABULARY_SNIPPET],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    grown, seconds, total = out.stdout.split()
    return int(grown) / 1e6, float(seconds), int(total) / 1e6


def pipeline_load_seconds() -> float:
    """Import plus first call of the pipeline in a fresh interpreter, seconds."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SNIPPET], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def synthetic_patient(notes: Sequence[dict[str, str]], n: int = 40) -> list[dict[str, Any]]:
    """``n`` notes for one invented patient: sample texts with dates, authors and roles."""
    rng = random.Random(40)
    staff = [
        ("Dr Green", "GP"),
        ("Dr Heart", "cardiology"),
        ("Dr Kidney", "nephrology"),
        ("Nurse Lee", "nurse"),
    ]
    start = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
    picked = rng.sample(list(notes), n)
    out = []
    for i, note in enumerate(picked):
        author, role = staff[i % len(staff)]
        out.append(
            {
                "id": f"syn-{i:02d}",
                "author": author,
                "role": role,
                "time": (start + dt.timedelta(days=18 * i)).isoformat(),
                "text": note["transcription"],
            }
        )
    return out


def cohort_patient_inputs(bundle: dict[str, Any]) -> dict[str, Any]:
    """Notes, active medication list and observations of one demo-cohort FHIR bundle.

    Authors' roles come from their PractitionerRole codes (e.g. ``Cardiologist``).
    """
    import base64

    resources = [(e.get("fullUrl", ""), e["resource"]) for e in bundle["entry"]]
    roles: dict[str, str] = {}
    for url, r in resources:
        if r["resourceType"] == "PractitionerRole" and r.get("code"):
            code = r["code"][0]
            role = code.get("text") or code["coding"][0].get("display", "")
            roles[url] = roles[f"PractitionerRole/{r['id']}"] = role
    notes, meds, obs = [], [], []
    for _url, r in resources:
        kind = r["resourceType"]
        if kind == "DocumentReference":
            author = r["author"][0]
            data = r["content"][0]["attachment"]["data"]
            notes.append(
                {
                    "id": r["id"],
                    "author": author.get("display", ""),
                    "role": roles.get(author.get("reference", ""), ""),
                    "time": r["date"],
                    "text": base64.b64decode(data).decode("utf-8"),
                }
            )
        elif kind == "MedicationRequest" and r.get("status") == "active":
            concept = r["medicationCodeableConcept"]
            meds.append({"name": concept.get("text") or concept["coding"][0]["display"]})
        elif kind == "Observation":
            parts = r.get("component", [r])
            for part in parts:
                if "valueQuantity" in part:
                    q = part["valueQuantity"]
                    obs.append(
                        {
                            "code": part["code"]["coding"][0]["code"],
                            "value": q["value"],
                            "unit": q.get("unit"),
                            "time": r.get("effectiveDateTime"),
                        }
                    )
    return {"notes": notes, "structured_medications": meds, "structured_observations": obs}


def naive_words_per_second(texts: Sequence[str]) -> float:
    """Whitespace splitting plus a lower-cased dictionary lookup per word: the floor of any reader."""
    vocabulary = {"pain", "fever", "aspirin", "lisinopril", "no"}
    t0 = time.perf_counter()
    words = hits = 0
    for text in texts:
        for w in text.split():
            words += 1
            hits += w.lower().strip(".,;:") in vocabulary
    return words / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.3f}"


@dataclass
class Section:
    """Rows of the results table, and lines for the notes and the error list."""

    rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _marked(t: NegationTarget) -> str:
    text = f"{t.sentence[: t.start]}**{t.sentence[t.start : t.end]}**{t.sentence[t.end :]}"
    return f"- [{'negated' if t.negated else 'not negated'}] {text[:220]}"


def _listed(label: str, items: list[str], limit: int = 25) -> str:
    more = f" ... ({len(items)} in all)" if len(items) > limit else ""
    return f"{label}: " + ", ".join(items[:limit]) + more


def medication_section(analyses: dict[str, Any]) -> Section:
    sections = load_medication_gold()
    med, per_section = medication_eval(sections, analyses)
    n_required = sum(len(set(s.required)) for s in sections)
    out = Section()
    out.rows.append(
        f"| Medication F1 in list sections ({len(sections)} sections, {n_required} gold drugs) |"
        f" {_pct(med.f1)} (P {_pct(med.precision)}, R {_pct(med.recall)}) | >= 0.95 | - |"
    )
    fps = [f"{n}: {p}" for n, s in per_section for p in s.false_positives]
    fns = [f"{n}: {g}" for n, s in per_section for g in s.missed]
    out.errors += [_listed("Medication false positives (note: name)", fps), ""]
    out.errors += [_listed("Medication misses (note: generic)", fns), ""]
    return out


def _negex_accuracy(results: list[NegationResult]) -> float:
    return accuracy(
        (negex_negated(r.target.sentence, r.target.start, r.target.end), r.target.negated)
        for r in results
    )[0]


def negation_section(analyses: dict[str, Any], analyse: Callable[[str], Any]) -> Section:
    results = negation_eval(load_negation_gold(), analyses, analyse)
    main = [r for r in results if r.target.source == "mtsamples"]
    built = [r for r in results if r.target.source == "constructed"]
    held = [r for r in results if r.target.source == "heldout"]
    unseen = [r for r in held if r.target.batch == "2"]
    found = [r for r in main if r.found]
    missed = [r for r in main if not r.found]

    def acc(rs: Iterable[NegationResult]) -> tuple[float, int]:
        return accuracy((r.predicted, r.target.negated) for r in rs)

    (acc_all, n_all), (acc_found, n_found) = acc(main), acc(found)
    (acc_hard, n_hard), (acc_built, n_built) = acc(r for r in main if r.target.hard), acc(built)
    (acc_held, n_held), (acc_unseen, n_unseen) = acc(held), acc(unseen)
    negated = [r.target.negated for r in main]
    majority = max(sum(negated), len(negated) - sum(negated)) / len(negated)
    tp = sum(1 for r in found if r.predicted and r.target.negated)
    fp = sum(1 for r in found if r.predicted and not r.target.negated)
    fn = sum(1 for r in main if r.target.negated and not r.predicted)
    scores = prf(tp, fp, fn)
    out = Section()
    out.rows += [
        f"| Negation accuracy, misses count as errors ({n_all} note targets) | {_pct(acc_all)} |"
        f" >= 0.95 | NegEx {_pct(_negex_accuracy(main))}; majority class {_pct(majority)} |",
        f"| Negation accuracy on targets the pipeline found ({n_found}) | {_pct(acc_found)} | - |"
        " - |",
        f"| Negation P/R/F1 (negated = positive) | P {_pct(scores.precision)}, R"
        f" {_pct(scores.recall)}, F1 {_pct(scores.f1)} | - | - |",
        f"| Negation accuracy, hard note targets ({n_hard}) | {_pct(acc_hard)} | - | - |",
        f"| Negation accuracy, constructed hard cases ({n_built}) | {_pct(acc_built)} | - |"
        f" NegEx {_pct(_negex_accuracy(built))} |",
        f"| Targets the pipeline did not find | {len(missed)} of {n_all} | - | - |",
        f"| Negation accuracy, held-out sample labelled later ({n_held},"
        f" {sum(not r.found for r in held)} not found) | {_pct(acc_held)} | - |"
        f" NegEx {_pct(_negex_accuracy(held))} |",
        f"| ... its second batch, never shown before this run ({n_unseen},"
        f" {sum(not r.found for r in unseen)} not found) | {_pct(acc_unseen)} | - | - |",
    ]
    wrong = [r for r in found + built if r.found and r.predicted != r.target.negated]
    out.errors += ["Negation errors (gold in brackets):", ""]
    out.errors += [_marked(r.target) for r in wrong[:20]] + [""]
    terms = Counter(r.target.sentence[r.target.start : r.target.end].lower() for r in missed)
    out.errors += [
        "Negation targets not found, by term (count): "
        + (", ".join(f"{term} {count}" for term, count in terms.most_common()) or "none"),
        "",
        # Held-out misses and errors are counted, not listed, so the sample stays blind.
        f"Held-out sample: {sum(not r.found for r in held)} targets not found,"
        f" {sum(r.found and r.predicted != r.target.negated for r in held)} wrong flags"
        " (not listed, to keep the sample blind).",
    ]
    return out


def finding_section(analyses: dict[str, Any], legacy: dict[str, Any]) -> Section:
    """Finding recall/precision and negation on the labelled sentences, both lexicons."""
    gold = load_finding_gold()
    out = Section()
    for split, label in (
        ("heldout", "held-out sentences (odd note ids)"),
        ("dev", "development sentences (even note ids)"),
    ):
        sentences = [s for s in gold if s.split == split]
        new, old = finding_eval(sentences, analyses), finding_eval(sentences, legacy)
        n_sent = len(sentences)
        out.rows += [
            f"| Finding recall, span overlap, {label}: {n_sent} sentences |"
            f" {_ratio(new.recalled, new.gold)} | >= 0.90 |"
            f" problems.csv {_ratio(old.recalled, old.gold)} |",
            f"| Finding precision, span overlap, {label} | {_ratio(new.correct, new.predicted)} |"
            f" >= 0.90 | problems.csv {_ratio(old.correct, old.predicted)} |",
            f"| Negation accuracy on recognised findings, {label} |"
            f" {_ratio(new.negation_right, new.negation_n)} | >= 0.95 |"
            f" problems.csv {_ratio(old.negation_right, old.negation_n)} |",
        ]
        if split == "heldout":
            for batch in sorted({s.batch for s in sentences}, key=int):
                part = [s for s in sentences if s.batch == batch]
                b_new, b_old = finding_eval(part, analyses), finding_eval(part, legacy)
                out.rows.append(
                    f"| ... held-out batch {batch} ({len(part)} sentences): recall / precision |"
                    f" {_pct(b_new.recalled / b_new.gold)} / {_pct(b_new.correct / b_new.predicted)}"
                    f" | - | problems.csv {_pct(b_old.recalled / b_old.gold)} /"
                    f" {_pct(b_old.correct / b_old.predicted)} |"
                )
            # Held-out errors are counted, not listed, so that the sample stays blind.
            out.errors.append(
                f"Held-out finding sentences: {len(new.misses)} findings missed,"
                f" {len(new.false_positives)} false positives, {len(new.negation_errors)} wrong"
                " negation flags (not listed, to keep the sample blind)."
            )
            out.errors.append("")
        else:
            # Batches 8 to 20 were drawn after the matcher had been tuned on batches 1 to 7,
            # batch 21 after the rules of batches 8 to 20, before the vocabulary was rebuilt,
            # batch 22 after the rebuild, batch 23 after the Symptom Ontology and the rules
            # chosen on batches 21 and 22, batch 24 after those rules and before the fourth
            # round (organ adjectives, closed compounds, more abbreviations and lay words),
            # batch 25 after the fourth round, labelled by a second annotator.
            for name, batches in (
                ("1 to 7", range(1, 8)),
                ("8 to 20", range(8, 21)),
                ("21", range(21, 22)),
                ("22", range(22, 23)),
                ("23", range(23, 24)),
                ("24", range(24, 25)),
                ("25", range(25, 26)),
            ):
                part = [s for s in sentences if s.batch in {str(b) for b in batches}]
                b_new = finding_eval(part, analyses)
                out.rows.append(
                    f"| ... development batch{'es' if ' ' in name else ''} {name}"
                    f" ({len(part)} sentences): recall /"
                    f" precision | {_pct(b_new.recalled / b_new.gold)} /"
                    f" {_pct(b_new.correct / b_new.predicted)} | - | - |"
                )
            out.errors += [
                _listed("Development findings missed (sentence: gold text)", new.misses),
                "",
                _listed(
                    "Development false positives (sentence: predicted text)", new.false_positives
                ),
                "",
                _listed("Development negation errors", new.negation_errors),
                "",
            ]
    return out


def rouge_section(notes: dict[str, dict[str, str]], analyses: dict[str, Any]) -> Section:
    from nlp.summarise import summarise_note

    rows = rouge_eval(notes, analyses, summarise_note)
    even = [r for r in rows if int(r.note_id) % 2 == 0]
    odd = [r for r in rows if int(r.note_id) % 2 == 1]

    def mean(rs: list[RougeRow], attr: str) -> str:
        return _pct(statistics.fmean(getattr(r, attr) for r in rs))

    def leads(rs: list[RougeRow]) -> str:
        return f"lead-1 {mean(rs, 'lead1')}, lead-3 {mean(rs, 'lead3')}"

    return Section(
        rows=[
            f"| One-note summary ROUGE-L F vs description ({len(rows)} notes) |"
            f" {mean(rows, 'summary')} | > lead-3 | {leads(rows)} |",
            f"| ... even note ids (weights tuned here, {len(even)}) | {mean(even, 'summary')} |"
            f" - | {leads(even)} |",
            f"| ... odd note ids (held out, {len(odd)}) | {mean(odd, 'summary')} | - |"
            f" {leads(odd)} |",
        ]
    )


def summariser_section(notes: dict[str, dict[str, str]], analyse: Callable[[str], Any]) -> Section:
    from nlp.summarise import summarise

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    patient = synthetic_patient(list(notes.values()))
    words = sum(len(n["text"].split()) for n in patient)
    t0 = time.perf_counter()
    summary = summarise(patient, now=now)
    cold_s = time.perf_counter() - t0
    stored = [dict(n, analysis=analyse(n["text"])) for n in patient]
    t0 = time.perf_counter()
    summarise(stored, now=now)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for n in patient:
        analyse(n["text"])
    analyse_only_s = time.perf_counter() - t0

    # the demo cohort: real cross-note records (several clinicians, medication lists, readings)
    from patients.cohort.generator import generate_patient

    cohort = []
    for index in range(COHORT_PATIENTS):
        inputs = cohort_patient_inputs(generate_patient(index, seed=0, today=COHORT_TODAY))
        t0 = time.perf_counter()
        result = summarise(**inputs, now=now)
        cohort.append((len(inputs["notes"]), time.perf_counter() - t0, result))
    conflicts = [c.message for _n, _t, r in cohort for c in r.medication_conflicts]

    def total(attr: str) -> int:
        return sum(len(getattr(r, attr)) for _n, _t, r in cohort)

    out = Section()
    out.rows += [
        f"| Summarise a 40-note patient ({words:,} words), notes not yet analysed |"
        f" {cold_s:.3f} s | < 1 s | analysing the 40 notes alone {analyse_only_s:.3f} s |",
        f"| Summarise the same patient from stored analyses | {warm_s:.3f} s | - | - |",
        f"| Summarise a demo-cohort patient ({COHORT_PATIENTS} patients, median"
        f" {statistics.median(n for n, _t, _r in cohort):.0f} notes), max |"
        f" {max(t for _n, t, _r in cohort):.3f} s | < 1 s | median"
        f" {statistics.median(t for _n, t, _r in cohort):.3f} s |",
    ]
    out.notes += [
        f"40-note summary: {len(summary.problems)} problems ({len(summary.active_problems)}"
        f" active), {len(summary.medications)} medications, {len(summary.medication_conflicts)}"
        f" clinician disagreements, {len(summary.open_follow_ups)} open follow-ups,"
        f" {len(summary.narrative)} narrative sentences.",
        "",
        f"Demo cohort ({COHORT_PATIENTS} patients): {len(conflicts)} clinician disagreements"
        f" surfaced in {sum(bool(r.medication_conflicts) for _n, _t, r in cohort)} patients,"
        f" {sum(len(r.open_follow_ups) for _n, _t, r in cohort)} open follow-ups,"
        f" {total('medication_reconciliation')} note/list medication mismatches,"
        f" {total('value_discrepancies')} note numbers disagreeing with the record."
        " Examples: " + "; ".join(f"_{m}_" for m in conflicts[:3]),
    ]
    return out


def code_state() -> str:
    """The commit measured, and whether the note reader's files differ from it."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "nlp", "bench/nlp_eval.py", "bench/data/nlp_gold")
    return f"commit {commit}" + (" with uncommitted changes under nlp/" if dirty else "")


def main() -> None:
    from bench._report import write_section
    from nlp.pipeline import analyse

    notes = load_notes()
    texts = [n["transcription"] for n in notes.values()]
    words = sum(len(t.split()) for t in texts)
    # Other work on a shared machine slows every timing; the load average says how much.
    load_before = os.getloadavg()[0]
    load_s = pipeline_load_seconds()
    vocab_mb, vocab_s, process_mb = vocabulary_footprint()
    analyse("warm up")
    t0, cpu0 = time.perf_counter(), time.process_time()
    analyses = {nid: analyse(n["transcription"]) for nid, n in notes.items()}
    wps = words / (time.perf_counter() - t0)
    # CPU time is less sensitive than wall time to other processes sharing the cores.
    cpu_wps = words / (time.process_time() - cpu0)
    old_pipeline = legacy_pipeline()
    t0 = time.perf_counter()
    legacy = {nid: analyse(n["transcription"], pipeline=old_pipeline) for nid, n in notes.items()}
    legacy_wps = words / (time.perf_counter() - t0)
    vocabulary_csv = ROOT / "nlp" / "data" / "finding_vocabulary.csv"
    speed = Section(
        rows=[
            f"| `analyse` throughput, one process ({words:,} words) | {wps:,.0f} words/s"
            f" ({cpu_wps:,.0f} per CPU second) |"
            f" >= 50,000 | problems.csv lexicon {legacy_wps:,.0f} words/s; whitespace split +"
            f" dict lookup {naive_words_per_second(texts):,.0f} words/s |",
            f"| Pipeline load (fresh interpreter: import + first call) | {load_s:.2f} s |"
            " < 20 s | - |",
            f"| Finding vocabulary in memory (file read + matcher built, fresh interpreter) |"
            f" {vocab_mb:,.0f} MB, built in {vocab_s:.2f} s | - | whole process with the"
            f" pipeline loaded {process_mb:,.0f} MB; file"
            f" {vocabulary_csv.stat().st_size / 1e6:.1f} MB on disk |",
        ]
    )
    parts = [
        medication_section(analyses),
        finding_section(analyses, legacy),
        negation_section(analyses, analyse),
        rouge_section(notes, analyses),
        speed,
        summariser_section(notes, analyse),
    ]
    lines = [
        "Data: `mtsamples_dev.csv` (377 notes). Gold and method: `bench/data/nlp_gold/README.md`,"
        f' `docs/nlp-evaluation.md`. Code: {code_state()}. "problems.csv" is the same pipeline'
        " with the hand-made problem lexicon it used before the ontology vocabulary. Intervals"
        f" are 95% Wilson score intervals. Machine load average (1 min) {load_before:.1f} at the"
        f" start of the run and {os.getloadavg()[0]:.1f} at its end, on"
        f" {os.cpu_count()} cores: timings scale with it, the baselines beside them too.",
        "",
        "| Measure | Value | Target | Baseline in the same run |",
        "|---|---|---|---|",
        *(row for part in parts for row in part.rows),
        "",
        *(line for part in parts for line in part.notes),
        "",
        "### Errors, for the pipeline's maintainers",
        "",
        *(line for part in parts for line in part.errors),
    ]
    markdown = "\n".join(lines)
    path = write_section("nlp_eval", markdown)
    print(markdown)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
