"""Vital signs and laboratory values with canonical units."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlp.measurements import MeasurementMatch, convert, find_measurements, load_specs

DATA = Path(__file__).resolve().parents[2] / "nlp" / "data"


def _one(text: str) -> MeasurementMatch:
    (found,) = find_measurements(text)
    return found


def test_it_reads_blood_pressure_with_systolic_and_diastolic() -> None:
    bp = _one("BP 150/95 today.")
    assert bp.key == "bp"
    assert bp.text == "BP 150/95"
    assert bp.attributes["systolic"] == 150.0
    assert bp.attributes["diastolic"] == 95.0
    assert bp.attributes["value"] == 150.0 and bp.attributes["value2"] == 95.0
    assert bp.attributes["unit"] == "mmHg"


@pytest.mark.parametrize(
    "text",
    ["Blood pressure was 124/78.", "B/P: 124/78", "blood pressure is elevated at 124/78 mmHg"],
)
def test_it_reads_blood_pressure_written_in_words(text: str) -> None:
    assert _one(text).attributes["systolic"] == 124.0


def test_it_ignores_a_bare_fraction_without_a_name_or_unit() -> None:
    assert find_measurements("Seen on 10/12 for a 3/4 inch cut.") == []


def test_it_keeps_a_bare_pressure_with_a_unit() -> None:
    assert _one("Pressure 118/76 mmHg supine.").attributes["diastolic"] == 76.0


@pytest.mark.parametrize(
    ("text", "key", "value", "unit"),
    [
        ("HbA1c 8.2%", "hba1c", 8.2, "%"),
        ("hemoglobin A1c was 7.1", "hba1c", 7.1, "%"),
        ("HbA1c 53 mmol/mol", "hba1c", 7.0, "%"),
        ("glucose 180 mg/dL", "glucose", 180.0, "mg/dL"),
        ("fasting glucose 10 mmol/L", "glucose", 180.16, "mg/dL"),
        ("blood sugars around 7.5", "glucose", 135.12, "mg/dL"),
        ("LDL 130 mg/dL", "ldl", 130.0, "mg/dL"),
        ("LDL cholesterol 3.4 mmol/L", "ldl", 131.478, "mg/dL"),
        ("eGFR 52 mL/min/1.73m2", "egfr", 52.0, "mL/min/1.73m2"),
        ("creatinine 1.4 mg/dL", "creatinine", 1.4, "mg/dL"),
        ("creatinine 120 umol/L", "creatinine", 1.357, "mg/dL"),
        ("Weight was 130 pounds", "weight", 58.967, "kg"),
        ("weight 82 kg", "weight", 82.0, "kg"),
        ("pulse 78", "pulse", 78.0, "/min"),
        ("heart rate of 110 bpm", "pulse", 110.0, "/min"),
        ("BMI 32.5", "bmi", 32.5, "kg/m2"),
        ("temperature 98.6 F", "temperature", 37.0, "Cel"),
        ("O2 sat 95% on room air", "spo2", 95.0, "%"),
        ("respirations 18", "respiratory_rate", 18.0, "/min"),
        ("triglycerides 2.0 mmol/L", "triglycerides", 177.14, "mg/dL"),
    ],
)
def test_it_converts_readings_to_canonical_units(
    text: str, key: str, value: float, unit: str
) -> None:
    found = _one(text)
    assert found.key == key
    assert found.attributes["value"] == pytest.approx(value, abs=0.01)
    assert found.attributes["unit"] == unit


def test_it_keeps_the_value_and_unit_as_written() -> None:
    found = _one("glucose 10 mmol/L")
    assert found.attributes["original_value"] == 10.0
    assert found.attributes["original_unit"] == "mmol/L"


def test_it_drops_implausible_values() -> None:
    assert find_measurements("Pulses 2+ bilaterally; pulse 900.") == []


def test_it_reads_a_vital_signs_line() -> None:
    found = find_measurements("Vitals: BP 132/84, HR 72, RR 16, temp 37.1 C, wt 90 kg, SpO2 98%.")
    assert [m.key for m in found] == [
        "bp",
        "pulse",
        "respiratory_rate",
        "temperature",
        "weight",
        "spo2",
    ]


def test_it_carries_loinc_codes() -> None:
    assert _one("HbA1c 8.2%").code == "4548-4"


def test_convert_rejects_unknown_keys_and_units() -> None:
    with pytest.raises(ValueError, match="key"):
        convert("sodium_bicarbonate", 1.0, None)
    with pytest.raises(ValueError, match="unit for glucose"):
        convert("glucose", 1.0, "g/L")


def test_every_conversion_names_its_source_and_applies_to_a_known_key() -> None:
    specs = load_specs()
    with (DATA / "unit_conversions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["key"] in specs
            assert row["source"].strip()
    with (DATA / "measurements.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["source"].strip()
            assert float(row["min_value"]) < float(row["max_value"])


def test_it_flags_a_unit_it_had_to_assume() -> None:
    assert _one("Weight: 121.4").attributes["unit_assumed"] is True
    assert "unit_assumed" not in _one("weight 82 kg").attributes
