"""Draw the sentences of ``findings.csv`` (run once; kept so the draw can be repeated).

Sentences come from ``mtsamples_dev.csv`` split by the pipeline's own segmenter (5 to 40
words). Odd note ids give the held-out sample, even note ids the development sample; sentences
already in ``negation.csv`` or ``negation_heldout.csv`` are skipped. Each sample is a random
draw (fixed seed) plus a smaller draw among sentences with a negation cue word, so that enough
negated findings are labelled. Prints ``split, note_id, start, end, sentence`` as CSV.
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path

from nlp.segment import segment

HERE = Path(__file__).resolve().parent
NOTES = HERE.parents[2].parent / "shared" / "data" / "notes" / "mtsamples_dev.csv"
CUE = re.compile(
    r"\b(no|not|denies|denied|without|negative|free of|absent|none|never|nor|rule out)\b", re.I
)
# split: (note-id parity, seed, random sentences, extra sentences with a cue word); batch 2 of
# the held-out sample was drawn after batch 1 had been labelled, skipping its sentences.
DRAWS = {
    "heldout": (1, 20261204, 70, 30),
    "dev": (0, 20261205, 40, 20),
    "heldout2": (1, 20261206, 70, 30),
    "dev2": (0, 20261207, 70, 30),
    "dev3": (0, 20261208, 70, 30),
    "dev4": (0, 20261209, 70, 30),
    "heldout3": (1, 20261210, 70, 30),
    "dev5": (0, 20261211, 70, 30),
    "dev6": (0, 20261212, 70, 30),
    "dev7": (0, 20261213, 70, 30),
    "dev8": (0, 20261214, 70, 30),
    "dev9": (0, 20261215, 70, 30),
    "dev10": (0, 20261216, 70, 30),
    "dev11": (0, 20261217, 70, 30),
    "dev12": (0, 20261218, 70, 30),
    "dev13": (0, 20261219, 70, 30),
    "dev14": (0, 20261220, 70, 30),
    "dev15": (0, 20261221, 70, 30),
    "dev16": (0, 20261222, 70, 30),
    "dev17": (0, 20261223, 70, 30),
    "dev18": (0, 20261224, 70, 30),
    "dev19": (0, 20261225, 70, 30),
    "dev20": (0, 20261226, 70, 30),
    "dev21": (0, 20261227, 70, 30),
    "dev22": (0, 20261228, 70, 30),
    "dev23": (0, 20261229, 70, 30),
    # from batch 24 on, sentences already in finding_sentences.csv are skipped as well (the
    # segmenter has changed since the first batches were drawn, so the draws above no longer
    # reproduce every earlier sentence); the even notes' cue sentences are used up.
    "dev24": (0, 20261230, 100, 0),
    "heldout4": (1, 20261231, 70, 30),
    "dev25": (0, 20261232, 100, 0),
    "heldout5": (1, 20261233, 70, 30),
    "dev26": (0, 20261234, 100, 0),
    "dev27": (0, 20261235, 100, 0),
    "dev28": (0, 20261236, 100, 0),
    "heldout6": (1, 20261237, 70, 30),
}
LATER = {"dev24", "heldout4", "dev25", "heldout5", "dev26", "dev27", "dev28", "heldout6"}
# the segmenter has changed again since batch 25, so a labelled sentence may now be cut at other
# offsets: from batch 26 on, a sentence overlapping any labelled sentence's text is skipped
SPAN_SKIP = {"dev26", "dev27", "dev28", "heldout6"}


def _used() -> set[tuple[str, int]]:
    used = set()
    for name in ("negation.csv", "negation_heldout.csv"):
        with (HERE / name).open(encoding="utf-8") as fh:
            used |= {(r["note_id"], int(r["sent_start"])) for r in csv.DictReader(fh)}
    return used


def _labelled() -> dict[tuple[str, int], str]:
    """Sentences of finding_sentences.csv, each with its split and batch ("dev24")."""
    with (HERE / "finding_sentences.csv").open(encoding="utf-8") as fh:
        return {
            (r["note_id"], int(r["sent_start"])): r["split"] + r["batch"]
            for r in csv.DictReader(fh)
        }


def _labelled_spans() -> dict[str, list[tuple[int, int]]]:
    """Per note, the character spans of every sentence in the gold files."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for name in ("negation.csv", "negation_heldout.csv", "finding_sentences.csv"):
        with (HERE / name).open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["note_id"]:
                    spans.setdefault(r["note_id"], []).append(
                        (int(r["sent_start"]), int(r["sent_end"]))
                    )
    return spans


def main() -> None:
    with NOTES.open(encoding="utf-8") as fh:
        notes = list(csv.DictReader(fh))
    used = _used()
    labelled = _labelled()
    spans = _labelled_spans()
    drawn: set[tuple[str, int]] = set()
    writer = csv.writer(sys.stdout)
    writer.writerow(["split", "note_id", "sent_start", "sent_end", "sentence"])
    for split, (parity, seed, n_random, n_cue) in DRAWS.items():
        pool = []
        # a later batch skips every labelled sentence but its own
        skip = (
            used | {k for k, name in labelled.items() if name != split} if split in LATER else used
        )
        for note in notes:
            if int(note["note_id"]) % 2 != parity:
                continue
            text = note["transcription"]
            for s in segment(text)[1]:
                overlaps = any(
                    (note["note_id"], start) in skip for start in range(s.start - 5, s.start + 6)
                ) or (
                    split in SPAN_SKIP
                    and any(a < s.end and s.start < b for a, b in spans.get(note["note_id"], []))
                )
                if (
                    5 <= len(s.text.split()) <= 40
                    and not overlaps
                    and ((note["note_id"], s.start) not in drawn)
                ):
                    pool.append((note["note_id"], s.start, s.end, s.text))
        rng = random.Random(seed)
        rng.shuffle(pool)
        picked = pool[:n_random]
        picked += [p for p in pool[n_random:] if CUE.search(p[3])][:n_cue]
        for note_id, start, end, text in picked:
            drawn.add((note_id, start))
            writer.writerow([split.rstrip("0123456789"), note_id, start, end, text])


if __name__ == "__main__":
    main()
