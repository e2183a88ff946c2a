"""The backtest's report a reader can act on: per-patient rows, intervals, and broken bundles named."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from models_engine.backtest import BACKTEST_VARIABLES, PatientScore, run_backtest
from tests.conftest import SYNTHEA
from tests.fixtures.twin.factories import make_history


def test_the_per_patient_scores_add_up_to_the_per_variable_report() -> None:
    histories = [make_history(patient_id=f"p{i}", seed=i, n=10, span_days=1200) for i in range(12)]
    scores: list[PatientScore] = []
    report = run_backtest(histories, holdout_days=365, n_samples=100, patient_scores=scores)
    for var in BACKTEST_VARIABLES:
        rows = [s for s in scores if s.variable == var]
        assert len(rows) == report[var]["patients"]
        assert sum(s.n for s in rows) == report[var]["n"]
        if rows:
            for model in ("twin", "locf", "trend"):
                pooled = sum(s.n * getattr(s, f"mae_{model}") for s in rows) / sum(
                    s.n for s in rows
                )
                assert pooled == pytest.approx(report[var][f"mae_{model}"])
    assert {s.patient_id for s in scores} <= {h.patient_id for h in histories}


def test_a_folder_with_one_broken_bundle_is_scored_and_the_broken_one_named(tmp_path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    for path in SYNTHEA[:2]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.json").write_text('{"resourceType": "Bundle", "entry": [', encoding="utf-8")
    out = tmp_path / "report.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 of 3 bundle\(s\) could not be read"):
        call_command(
            "backtest",
            "--fhir",
            str(folder),
            "--json",
            str(out),
            "--samples",
            "100",
            "--no-progress",
            stdout=stdout,
            stderr=stderr,
        )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["bundles"] == 3
    assert report["failed_bundles"] == [
        {"file": "broken.json", "reason": report["failed_bundles"][0]["reason"]}
    ]
    assert "invalid JSON" in report["failed_bundles"][0]["reason"]
    scored_files = {row["file"] for row in report["patients"]}
    assert scored_files == {p.name for p in SYNTHEA[:2]}
    row = report["patients"][0]
    assert set(row) == {
        "patient_id",
        "file",
        "variable",
        "n",
        "mae_twin",
        "mae_locf",
        "mae_trend",
        "coverage80",
    }
    assert report["sbp"]["gain_low"] <= report["sbp"]["gain_high"]
    assert report["sbp"]["trend_gain_low"] <= report["sbp"]["trend_gain_high"]
    assert report["sbp"]["coverage80_low"] <= report["sbp"]["coverage80_high"]
    assert "bootstrap" in report["bootstrap"]
    assert "counted once" in report["patient_weighted"]
    assert report["sbp"]["patient_mae_twin"] == pytest.approx(
        sum(r["mae_twin"] for r in report["patients"] if r["variable"] == "sbp")
        / report["sbp"]["patients"]
    )
    # the terminal: the summary, the same with each patient once, then one table per variable
    # naming the patients by file
    text = stdout.getvalue()
    assert "gain over LOCF" in text and "gain over trend (95 % bootstrap)" in text
    assert "cov80 interval" in text
    assert "Each patient counted once" in text
    for var in BACKTEST_VARIABLES:
        assert f"\n{var} (" in text
    assert SYNTHEA[0].stem[:39] in text
    assert "broken.json: not scored: " in stderr.getvalue()


@pytest.mark.django_db
def test_the_import_goes_on_past_a_broken_bundle_and_names_it(tmp_path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    shutil.copy(SYNTHEA[0], folder / SYNTHEA[0].name)
    (folder / "broken.json").write_text("[]", encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match=r"1 bundle\(s\) failed"):
        call_command("import_fhir", str(folder), "--no-progress", stdout=stdout, stderr=stderr)
    assert "Bundles: 2 read, 1 imported, 0 unchanged, 1 failed" in stdout.getvalue()
    assert "broken.json: nothing imported" in stderr.getvalue()
    assert "the top level must be a JSON object" in stderr.getvalue()
