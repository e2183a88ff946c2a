"""Vital signs and laboratory values written in notes, converted to canonical units.

Each reading becomes a key (``bp``, ``hba1c``, ``glucose``, ...), a value in the canonical unit of
``data/measurements.csv`` and the value and unit as written; conversion factors are in
``data/unit_conversions.csv`` with their sources.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MeasurementMatch",
    "MeasurementSpec",
    "convert",
    "find_measurements",
    "load_specs",
]

DATA_DIR = Path(__file__).parent / "data"

# Words allowed between a measurement's name and its value ("HbA1c was 8.2", "BP today of 150/95").
_FILLER = (
    r"(?:\s*(?:[:=\-]|\((?:[a-z]+)\)|was|were|is|are|of|at|level|levels|reading|readings|today|"
    r"now|measured|checked|came\s+back|has\s+been|had\s+been|value|remains|remained|"
    r"elevated|high|low|up|down|around|about|approximately|~|only|still|recorded)\s*){0,5}"
)
_NUMBER = r"(?P<value>\d{1,4}(?:\.\d+)?)"
_NAMES: dict[str, str] = {
    "hba1c": r"(?:hemoglobin|haemoglobin|hgb|hb)\s*a1c|hba1c|a1c|glycated\s+ha?emoglobin|glycohemoglobin",
    "glucose": r"(?:fasting\s+|random\s+|blood\s+|plasma\s+|serum\s+)?glucose|blood\s+sugars?|"
    r"sugars?|fbg|fbs|bg|cbg|fingerstick",
    "ldl": r"ldl(?:[\s-]*(?:c|cholesterol))?|low[\s-]density\s+lipoprotein(?:\s+cholesterol)?",
    "hdl": r"hdl(?:[\s-]*(?:c|cholesterol))?|high[\s-]density\s+lipoprotein(?:\s+cholesterol)?",
    "total_cholesterol": r"total\s+cholesterol|cholesterol|tc",
    "triglycerides": r"triglycerides?|tgs?",
    "egfr": r"e?gfr|estimated\s+gfr|estimated\s+glomerular\s+filtration\s+rate",
    "creatinine": r"(?:serum\s+)?creatinine|cr|creat",
    "weight": r"weight|weighs|weighed|wt",
    "height": r"height|ht",
    "bmi": r"bmi|body\s+mass\s+index",
    "pulse": r"pulse(?:\s+rate)?|heart\s+rate|hr",
    "respiratory_rate": r"respirations?|respiratory\s+rate|resp|rr",
    "temperature": r"temperature|temp",
    "spo2": r"(?:o2|oxygen)\s+sat(?:uration)?s?|sao2|spo2|pulse\s+ox(?:imetry)?|saturating|sats?",
    "potassium": r"potassium|k\+?",
}
_UNITS: dict[str, str] = {
    "hba1c": r"%|percent|mmol/mol",
    "glucose": r"mg/dl|mmol/l|mg%",
    "ldl": r"mg/dl|mmol/l",
    "hdl": r"mg/dl|mmol/l",
    "total_cholesterol": r"mg/dl|mmol/l",
    "triglycerides": r"mg/dl|mmol/l",
    "egfr": r"ml/min(?:/1\.73\s*m(?:2|²|\^2))?|ml/min/1\.73|cc/min",
    "creatinine": r"mg/dl|[uµμ]mol/l",
    "weight": r"kg|kgs|kilograms?|lbs?\.?|pounds?|g|grams?",
    "height": r"cm|centimeters?|m|meters?|in|inches|\"",
    "bmi": r"kg/m2|kg/m²|kg/m\^2",
    "pulse": r"bpm|beats\s+per\s+minute|/min|per\s+minute",
    "respiratory_rate": r"/min|per\s+minute|breaths\s+per\s+minute",
    "temperature": r"°?\s?[fc]\b|degrees\s+(?:f|c|fahrenheit|celsius)|fahrenheit|celsius",
    "spo2": r"%|percent",
    "potassium": r"mmol/l|meq/l",
}
# Spelled unit -> the unit name used in ``unit_conversions.csv``.
_UNIT_ALIASES: dict[str, str] = {
    "percent": "%",
    "mg%": "mg/dL",
    "mg/dl": "mg/dL",
    "mmol/l": "mmol/L",
    "mmol/mol": "mmol/mol",
    "umol/l": "umol/L",
    "µmol/l": "umol/L",
    "μmol/l": "umol/L",
    "kg": "kg",
    "kgs": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "lb": "lb",
    "lbs": "lb",
    "lb.": "lb",
    "lbs.": "lb",
    "pound": "lb",
    "pounds": "lb",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "cm": "cm",
    "centimeter": "cm",
    "centimeters": "cm",
    "m": "m",
    "meter": "m",
    "meters": "m",
    "in": "in",
    "inches": "in",
    '"': "in",
    "meq/l": "mEq/L",
}


@dataclass(frozen=True)
class MeasurementSpec:
    """Canonical unit, LOINC code and plausibility limits of one measurement key."""

    key: str
    canonical_unit: str
    loinc: str
    min_value: float
    max_value: float
    conversions: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasurementMatch:
    """A reading found in a note, with character offsets into the note."""

    start: int
    end: int
    text: str
    key: str
    code: str
    attributes: dict[str, Any]


@functools.cache
def load_specs() -> dict[str, MeasurementSpec]:
    """Measurement keys with canonical units and unit conversions, read once per process."""
    conversions: dict[str, dict[str, tuple[float, float]]] = {}
    with (DATA_DIR / "unit_conversions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            conversions.setdefault(row["key"], {})[row["unit"]] = (
                float(row["factor"]),
                float(row["offset"]),
            )
    with (DATA_DIR / "measurements.csv").open(encoding="utf-8") as fh:
        return {
            row["key"]: MeasurementSpec(
                key=row["key"],
                canonical_unit=row["canonical_unit"],
                loinc=row["loinc"],
                min_value=float(row["min_value"]),
                max_value=float(row["max_value"]),
                conversions=conversions.get(row["key"], {}),
            )
            for row in csv.DictReader(fh)
        }


def convert(key: str, value: float, unit: str | None) -> tuple[float, str]:
    """Convert a reading to the canonical unit of its key.

    Parameters
    ----------
    key : str
        Measurement key, e.g. ``"glucose"``.
    value : float
        The number as written.
    unit : str or None
        The unit as written (normalised spelling, e.g. ``"mmol/L"``); None when the note gave
        none, in which case the canonical unit is assumed unless the value only makes sense in
        the other common unit (see :func:`_infer_unit`).

    Returns
    -------
    (value, unit)
        Value in the canonical unit (``mg/dL``, ``%``, ``kg``, ``cm``, ``Cel`` ...) and that unit.

    Raises
    ------
    ValueError
        If ``key`` is unknown or ``unit`` cannot be converted to the canonical unit.
    """
    specs = load_specs()
    if key not in specs:
        raise ValueError(f"key must be one of {sorted(specs)}, got {key!r}")
    spec = specs[key]
    unit = unit or _infer_unit(key, value) or spec.canonical_unit
    if unit == spec.canonical_unit or unit.lower() == spec.canonical_unit.lower():
        return value, spec.canonical_unit
    if unit not in spec.conversions:
        allowed = sorted([spec.canonical_unit, *spec.conversions])
        raise ValueError(f"unit for {key} must be one of {allowed}, got {unit!r}")
    factor, offset = spec.conversions[unit]
    return round(value * factor + offset, 3), spec.canonical_unit


def _infer_unit(key: str, value: float) -> str | None:
    # Unit-less readings: these ranges do not overlap between the two common units.
    if key == "glucose" and value < 35:
        return "mmol/L"
    if key in ("ldl", "hdl", "total_cholesterol", "triglycerides") and value < 20:
        return "mmol/L"
    if key == "hba1c" and value >= 20:
        return "mmol/mol"
    if key == "creatinine" and value >= 25:
        return "umol/L"
    if key == "temperature" and value > 50:
        return "F"
    return None


def _unit_name(raw: str | None, key: str) -> str | None:
    if raw is None:
        return None
    text = raw.strip().lower()
    if key == "temperature":
        return "F" if "f" in text else "Cel"
    if key == "egfr":
        return "mL/min/1.73m2"
    if key in ("pulse", "respiratory_rate"):
        return "/min"
    if key == "bmi":
        return "kg/m2"
    return _UNIT_ALIASES.get(text, raw.strip())


# First words of the measurement names, so the key patterns are tried only where a name starts.
_FIRST_WORDS: dict[str, tuple[str, ...]] = {
    "bp": ("bp", "b", "blood"),
    "hba1c": ("hemoglobin", "haemoglobin", "hgb", "hb", "hba1c", "a1c", "glycated", "glycohemoglobin"),
    "glucose": (
        "fasting", "random", "blood", "plasma", "serum", "glucose", "sugar", "sugars", "fbg", "fbs",
        "bg", "cbg", "fingerstick",
    ),
    "ldl": ("ldl", "low"),
    "hdl": ("hdl", "high"),
    "total_cholesterol": ("total", "cholesterol", "tc"),
    "triglycerides": ("triglyceride", "triglycerides", "tg", "tgs"),
    "egfr": ("egfr", "gfr", "estimated"),
    "creatinine": ("serum", "creatinine", "cr", "creat"),
    "weight": ("weight", "weighs", "weighed", "wt"),
    "height": ("height", "ht"),
    "bmi": ("bmi", "body"),
    "pulse": ("pulse", "heart", "hr"),
    "respiratory_rate": ("respiration", "respirations", "respiratory", "resp", "rr"),
    "temperature": ("temperature", "temp"),
    "spo2": ("o2", "oxygen", "sao2", "spo2", "pulse", "saturating", "sat", "sats"),
    "potassium": ("potassium", "k"),
}  # fmt: skip
_WORD_START = re.compile(r"(?<![\w/])[A-Za-z][A-Za-z0-9]*")
_BARE_BP = re.compile(r"(?<![\w/])\d{2,3}\s*/\s*\d{2,3}\s*mm", re.IGNORECASE)


@functools.cache
def _patterns() -> dict[str, re.Pattern[str]]:
    compiled: dict[str, re.Pattern[str]] = {"bp": _bp_pattern()}
    for key, names in _NAMES.items():
        unit = _UNITS[key]
        compiled[key] = re.compile(
            rf"(?<![\w/])(?:{names})(?![\w])\s*{_FILLER}{_NUMBER}(?![\d/+])"
            rf"(?:\s*(?P<unit>{unit})(?![a-z]))?",
            re.IGNORECASE,
        )
    return compiled


@functools.cache
def _keys_by_word() -> dict[str, tuple[str, ...]]:
    order = list(_patterns())
    by_word: dict[str, list[str]] = {}
    for key, words in _FIRST_WORDS.items():
        for word in words:
            by_word.setdefault(word, []).append(key)
    return {w: tuple(sorted(keys, key=order.index)) for w, keys in by_word.items()}


def _bp_pattern() -> re.Pattern[str]:
    return re.compile(
        r"(?<![\w/])(?:(?:bp|b/p|blood\s+pressures?)(?![\w])\s*" + _FILLER + r")?"
        r"(?P<sys>\d{2,3})\s*/\s*(?P<dia>\d{2,3})(?![\d/])"
        r"(?:\s*(?P<unit>mm\s*hg|mmhg))?",
        re.IGNORECASE,
    )


def find_measurements(text: str) -> list[MeasurementMatch]:
    """Vital signs and laboratory values in a note.

    Parameters
    ----------
    text : str
        The note.

    Returns
    -------
    list of MeasurementMatch
        In text order. ``attributes`` holds ``value`` and ``unit`` in canonical units,
        ``original_value`` and ``original_unit`` as written, and for blood pressure
        ``systolic``, ``diastolic`` and ``value2`` (diastolic), in mmHg; ``unit_assumed`` is True
        when the note gave no unit and one was inferred (see :func:`convert`). Values outside the
        plausibility limits of ``data/measurements.csv`` are dropped as misreadings.
    """
    specs = load_specs()
    patterns = _patterns()
    keys_by_word = _keys_by_word()
    found: list[MeasurementMatch] = []
    covered = 0
    starts = [
        (m.start(), keys_by_word.get(m.group(0).lower(), ())) for m in _WORD_START.finditer(text)
    ]
    starts += [(m.start(), ("bp",)) for m in _BARE_BP.finditer(text)]
    for pos, keys in sorted(starts):
        if pos < covered:
            continue
        for key in keys:
            m = patterns[key].match(text, pos)
            if m is None:
                continue
            match = _bp(m, specs) if key == "bp" else _reading(key, m, specs)
            if match is not None:
                found.append(match)
                covered = m.end()
                break
    return found


def _bp(m: re.Match[str], specs: dict[str, MeasurementSpec]) -> MeasurementMatch | None:
    named = m.group(0)[:1].isalpha()
    systolic, diastolic = int(m.group("sys")), int(m.group("dia"))
    if not named and m.group("unit") is None:
        return None  # a bare "120/80" may be a date or a ratio
    spec = specs["bp"]
    if not (spec.min_value <= systolic <= spec.max_value and 20 <= diastolic < systolic):
        return None
    attributes: dict[str, Any] = {
        "value": float(systolic),
        "value2": float(diastolic),
        "systolic": float(systolic),
        "diastolic": float(diastolic),
        "unit": "mmHg",
        "original_value": f"{systolic}/{diastolic}",
        "original_unit": m.group("unit"),
    }
    return MeasurementMatch(m.start(), m.end(), m.group(0), "bp", spec.loinc, attributes)


def _reading(
    key: str, m: re.Match[str], specs: dict[str, MeasurementSpec]
) -> MeasurementMatch | None:
    raw_value = float(m.group("value"))
    raw_unit = m.group("unit")
    unit = _unit_name(raw_unit, key)
    try:
        value, canonical = convert(key, raw_value, unit)
    except ValueError:
        return None
    spec = specs[key]
    if not spec.min_value <= value <= spec.max_value:
        return None
    attributes: dict[str, Any] = {
        "value": value,
        "unit": canonical,
        "original_value": raw_value,
        "original_unit": raw_unit.strip() if raw_unit else None,
    }
    if raw_unit is None:
        attributes["unit_assumed"] = True
    return MeasurementMatch(m.start(), m.end(), m.group(0), key, spec.loinc, attributes)
