"""The backtest command: FHIR bundles in, per-variable scores of the twin and the baselines out."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import SYNTHEA


def _backtest(*args: str) -> str:
    """Run the command quietly with ``args``; its standard output."""
    stdout = io.StringIO()
    call_command("backtest", *args, "--no-progress", stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def test_it_writes_per_variable_scores_for_the_twin_and_both_baselines(tmp_path) -> None:
    out = tmp_path / "backtest.json"
    stdout = io.StringIO()
    call_command(
        "backtest",
        "--fhir",
        *map(str, SYNTHEA),
        "--holdout-months",
        "12",
        "--json",
        str(out),
        "--samples",
        "100",
        "--no-progress",
        stdout=stdout,
        stderr=io.StringIO(),
    )
    result = json.loads(out.read_text())
    assert result["bundles"] == len(SYNTHEA) and result["holdout_months"] == 12
    for var in ("sbp", "dbp", "hba1c", "ldl", "weight"):
        row = result[var]
        assert set(row) >= {"n", "mae_twin", "mae_locf", "mae_trend", "coverage80", "coverage95"}
    assert result["sbp"]["n"] > 0 and result["sbp"]["mae_twin"] > 0
    assert 0 <= result["sbp"]["coverage80"] <= result["sbp"]["coverage95"] <= 1
    assert "sbp" in stdout.getvalue() and "MAE twin" in stdout.getvalue()


def test_it_names_the_bundle_that_cannot_be_parsed(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle"}')
    with pytest.raises(CommandError, match=r"bad\.json"):
        _backtest("--fhir", str(bad))


def test_a_bundle_without_readings_scores_nothing_instead_of_failing(tmp_path) -> None:
    bundle = json.loads(SYNTHEA[0].read_text(encoding="utf-8"))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    path = tmp_path / "patient_only.json"
    path.write_text(json.dumps(bundle))
    out = tmp_path / "backtest.json"
    _backtest("--fhir", str(path), "--json", str(out))
    result = json.loads(out.read_text())
    assert result["bundles"] == 1
    for var in ("sbp", "dbp", "hba1c", "ldl", "weight"):
        assert result[var]["n"] == 0 and result[var]["mae_twin"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--holdout-months", "121"], "--holdout-months must be within"),
        (["--holdout-months", "0"], "--holdout-months must be within"),
        (["--samples", "5"], "--samples"),
        (["--json", "/nonexistent-folder/out.json"], "does not exist"),
    ],
)
def test_it_refuses_bad_options_before_any_work(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        _backtest("--fhir", str(SYNTHEA[0]), *args)


def test_the_longest_holdout_is_accepted_and_a_bundle_named_twice_counts_once(tmp_path) -> None:
    out = tmp_path / "backtest.json"
    same = [str(SYNTHEA[0]), str(SYNTHEA[0]), str(SYNTHEA[0].parent / "." / SYNTHEA[0].name)]
    _backtest("--fhir", *same, "--holdout-months", "120", "--json", str(out))
    assert json.loads(out.read_text())["bundles"] == 1
