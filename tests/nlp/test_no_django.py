"""The note reader must run without Django: imported and used in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, sys
import nlp
analysis = nlp.analyse("MEDICATIONS:, Lisinopril 10 mg daily.,PLAN:, Recheck HbA1c in 3 months.")
print(json.dumps({
    "django": any(m == "django" or m.startswith("django.") for m in sys.modules),
    "labels": sorted({e.label for e in analysis.entities}),
}))
"""


def test_it_analyses_a_note_without_importing_django() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["django"] is False
    assert "medication" in result["labels"]
    assert "follow_up" in result["labels"]


def test_it_imports_the_package_without_building_the_pipeline() -> None:
    script = "import sys, nlp; print('nlp.pipeline' in sys.modules, 'spacy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
