"""The Synthea backtest report's table without the patient holding the most held-out readings."""

from __future__ import annotations

from bench.backtest_synthea import without_largest
from models_engine.backtest import PatientScore


def _score(pid: str, variable: str, n: int, twin: float, cover: float) -> PatientScore:
    return PatientScore(pid, variable, n, twin, twin + 1.0, twin + 2.0, cover)


def test_without_largest_pools_the_other_patients_by_their_readings() -> None:
    scores = [
        _score("a", "sbp", 10, 2.0, 1.0),  # holds the most readings: left out
        _score("b", "sbp", 1, 4.0, 0.0),
        _score("c", "sbp", 3, 8.0, 1.0),
    ]
    table = without_largest(scores)
    row = next(line for line in table.splitlines() if line.startswith("| sbp "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # 10 of 14 readings left out; the rest pooled by their readings: (4·1 + 8·3) / 4 = 7
    assert cells[1] == "10 (71 %)"
    assert cells[2] == "4 (2)"
    assert cells[3:7] == ["7", "8", "9", "0.75"]


def test_without_largest_skips_a_variable_with_one_patient() -> None:
    table = without_largest([_score("a", "ldl", 4, 1.0, 1.0)])
    assert "| ldl " not in table
