"""Clinical codes, canonical units and value limits at the records boundary (pure Python, no Django).

One canonical unit per LOINC code; values arriving in another unit are converted on the way in.
Values outside the *possible* range are rejected (they are errors, not measurements); values outside
the *plausible* range are kept and flagged for review (Synthea, for one, writes some implausible eGFRs).
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

#: Blood-pressure panels: 55284-4 in Synthea 2.x, 85354-9 in newer Synthea and US Core.
BP_PANEL_CODES = frozenset({"55284-4", "85354-9"})
SBP_CODE = "8480-6"
DBP_CODE = "8462-4"

# Molar-to-mass factors: glucose 180.16 g/mol → 18.016; cholesterol 386.65 g/mol → 38.67;
# triglycerides (as triolein, 885.7 g/mol) → 88.57; creatinine 113.12 g/mol → 1 mg/dL = 88.42 µmol/L.
# HbA1c IFCC ↔ NGSP master equation: NGSP% = 0.09148 × IFCC(mmol/mol) + 2.152 (Hoelzel W et al.,
# Clin Chem 2004;50:166). Pound = 0.45359237 kg exactly (international yard and pound agreement, 1959).


@dataclass(frozen=True)
class Variable:
    """A measured quantity the records layer understands."""

    key: str
    label: str
    codes: tuple[str, ...]
    unit: str
    #: multiplier from each accepted unit to ``unit``; a callable string "ifcc" marks the HbA1c equation
    conversions: dict[str, float]
    possible: tuple[float, float]


VARIABLES: tuple[Variable, ...] = (
    Variable("sbp", "systolic blood pressure", (SBP_CODE,), "mm[Hg]", {"mm[Hg]": 1.0}, (40, 300)),
    Variable("dbp", "diastolic blood pressure", (DBP_CODE,), "mm[Hg]", {"mm[Hg]": 1.0}, (20, 200)),
    Variable(
        "hba1c",
        "HbA1c",
        ("4548-4", "17856-6", "59261-8"),
        "%",
        {"%": 1.0, "mmol/mol": -1.0},
        (2, 25),
    ),
    Variable(
        "glucose",
        "glucose",
        ("2339-0", "2345-7", "1558-6"),
        "mg/dL",
        {"mg/dL": 1.0, "mmol/L": 18.016},
        (10, 2000),
    ),
    Variable(
        "weight",
        "body weight",
        ("29463-7",),
        "kg",
        {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001},
        (0.3, 500),
    ),
    Variable(
        "height",
        "body height",
        ("8302-2",),
        "cm",
        {"cm": 1.0, "m": 100.0, "[in_i]": 2.54},
        (20, 280),
    ),
    Variable("bmi", "body mass index", ("39156-5",), "kg/m2", {"kg/m2": 1.0}, (5, 150)),
    Variable(
        "total_chol",
        "total cholesterol",
        ("2093-3",),
        "mg/dL",
        {"mg/dL": 1.0, "mmol/L": 38.67},
        (20, 1500),
    ),
    Variable(
        "ldl",
        "LDL cholesterol",
        ("18262-6", "13457-7", "2089-1"),
        "mg/dL",
        {"mg/dL": 1.0, "mmol/L": 38.67},
        (1, 1000),
    ),
    Variable(
        "hdl", "HDL cholesterol", ("2085-9",), "mg/dL", {"mg/dL": 1.0, "mmol/L": 38.67}, (1, 500)
    ),
    Variable(
        "triglycerides",
        "triglycerides",
        ("2571-8",),
        "mg/dL",
        {"mg/dL": 1.0, "mmol/L": 88.57},
        (1, 20000),
    ),
    Variable(
        "egfr",
        "eGFR",
        ("33914-3", "62238-1", "48642-3", "48643-1", "98979-8", "69405-9"),
        "mL/min/{1.73_m2}",
        {"mL/min/{1.73_m2}": 1.0, "mL/min": 1.0},
        (0, 400),
    ),
    Variable(
        "creatinine",
        "creatinine",
        ("2160-0", "38483-4"),
        "mg/dL",
        {"mg/dL": 1.0, "umol/L": 1 / 88.42},
        (0.01, 40),
    ),
    Variable(
        "uacr",
        "urine albumin/creatinine ratio",
        ("9318-7", "14959-1"),
        "mg/g",
        {"mg/g": 1.0, "mg/mmol": 8.84},
        (0, 50000),
    ),
    Variable("heart_rate", "heart rate", ("8867-4",), "/min", {"/min": 1.0}, (10, 350)),
)

VARIABLE_BY_CODE: dict[str, Variable] = {code: var for var in VARIABLES for code in var.codes}
VARIABLE_BY_KEY: dict[str, Variable] = {var.key: var for var in VARIABLES}

# Spellings seen in the wild for the same UCUM unit.
_UNIT_ALIASES = {
    "mmhg": "mm[Hg]",
    "mm hg": "mm[Hg]",
    "mm[hg]": "mm[Hg]",
    "mg/dl": "mg/dL",
    "mmol/l": "mmol/L",
    "umol/l": "umol/L",
    "µmol/l": "umol/L",
    "kg": "kg",
    "g": "g",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "[lb_av]": "[lb_av]",
    "cm": "cm",
    "m": "m",
    "in": "[in_i]",
    "[in_i]": "[in_i]",
    "%": "%",
    "mmol/mol": "mmol/mol",
    "kg/m2": "kg/m2",
    "kg/m^2": "kg/m2",
    "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/1.73 m2": "mL/min/{1.73_m2}",
    "ml/min": "mL/min",
    "mg/g": "mg/g",
    "mg/mmol": "mg/mmol",
    "/min": "/min",
    "{beats}/min": "/min",
    "beats/min": "/min",
}


class UnitError(ValueError):
    """A value arrived in a unit that cannot be converted to its variable's canonical unit."""


class RangeError(ValueError):
    """A value is impossible for its variable (outside the possible range)."""


def normalise_unit(unit: str) -> str:
    """Map common spellings of a UCUM unit onto one form; unknown units come back unchanged."""
    return _UNIT_ALIASES.get(unit.strip().lower(), unit.strip())


def to_canonical(variable: Variable, value: float, unit: str) -> float:
    """Convert ``value`` in ``unit`` to the variable's canonical unit, or raise :class:`UnitError`."""
    norm = normalise_unit(unit)
    factor = variable.conversions.get(norm)
    if factor is None:
        accepted = ", ".join(variable.conversions)
        raise UnitError(
            f"unit {unit!r} is not accepted for {variable.label} (accepted: {accepted})"
        )
    if factor == -1.0:  # IFCC mmol/mol → NGSP %, Hoelzel 2004 master equation
        return 0.09148 * value + 2.152
    return value * factor


def check_possible(variable: Variable, value: float) -> None:
    """Raise :class:`RangeError` naming the variable and range when ``value`` cannot be real."""
    low, high = variable.possible
    if not (low <= value <= high):
        raise RangeError(
            f"{variable.label} {value:g} {variable.unit} is outside the possible range "
            f"{low:g}–{high:g} {variable.unit}"
        )


@dataclass(frozen=True)
class PlausibleRange:
    """Values outside ``low``-``high`` are possible but implausible: kept, flagged, left to review."""

    low: float
    high: float
    source: str


@functools.cache
def plausible_ranges() -> dict[str, PlausibleRange]:
    """Per variable key, its plausible range and the source it comes from (``plausible_ranges.csv``)."""
    with open(_DATA / "plausible_ranges.csv", encoding="utf-8", newline="") as fh:
        ranges: dict[str, PlausibleRange] = {}
        for row in csv.DictReader(fh):
            variable = VARIABLE_BY_KEY[row["variable"]]
            if row["unit"] != variable.unit:
                raise ValueError(
                    f"plausible_ranges.csv: {row['variable']} is in {row['unit']!r}, "
                    f"not the canonical {variable.unit!r}"
                )
            ranges[variable.key] = PlausibleRange(
                float(row["low"]), float(row["high"]), row["source"]
            )
    missing = set(VARIABLE_BY_KEY) - set(ranges)
    if missing:
        raise ValueError(f"plausible_ranges.csv has no row for {', '.join(sorted(missing))}")
    return ranges


def implausible_reason(variable: Variable, value: float) -> str:
    """Why ``value`` (canonical unit) is implausible for ``variable``, or "" when it is plausible."""
    bounds = plausible_ranges()[variable.key]
    if bounds.low <= value <= bounds.high:
        return ""
    side = "below" if value < bounds.low else "above"
    return (
        f"{variable.label} {value:.4g} {variable.unit} is {side} the plausible range "
        f"{bounds.low:g}-{bounds.high:g} {variable.unit}"
    )


def is_plausible(variable: Variable, value: float) -> bool:
    return not implausible_reason(variable, value)


def sole_unit(variable: Variable) -> str | None:
    """The only unit ``variable`` is ever given in, when it has one; ``None`` when it has several.

    A value sent without a unit is read in this unit (and marked as assumed); a variable with
    several units cannot be read without one.
    """
    return next(iter(variable.conversions)) if len(variable.conversions) == 1 else None


# Conditions the twin and its pages care about (SNOMED CT), both Synthea generations included.
CONDITION_GROUPS: dict[str, frozenset[str]] = {
    "hypertension": frozenset({"38341003", "59621000", "1201005"}),
    "type2_diabetes": frozenset({"44054006"}),
    "prediabetes": frozenset({"15777000", "714628002"}),
    "ckd": frozenset({"431855005", "431856006", "433144002", "431857002", "46177005", "709044004"}),
    "hyperlipidaemia": frozenset({"55822004", "13644009"}),
    "metabolic_syndrome": frozenset({"237602007"}),
    "smoker": frozenset({"449868002", "77176002", "428041000124106", "65568007"}),
}


@dataclass(frozen=True)
class DrugClassRow:
    ingredient: str
    names: tuple[str, ...]
    treatment_class: str
    standard_dose_mg: float | None
    source: str


@functools.cache
def _drug_rows() -> tuple[DrugClassRow, ...]:
    with open(_DATA / "treatment_classes.csv", encoding="utf-8", newline="") as fh:
        rows = []
        for row in csv.DictReader(fh):
            names = (row["ingredient"], *[a for a in row["aliases"].split("|") if a])
            dose = float(row["standard_dose_mg"]) if row["standard_dose_mg"] else None
            rows.append(
                DrugClassRow(row["ingredient"], names, row["treatment_class"], dose, row["source"])
            )
    return tuple(rows)


@functools.cache
def _statin_bands() -> tuple[tuple[str, float, float, str], ...]:
    with open(_DATA / "statin_intensity.csv", encoding="utf-8", newline="") as fh:
        return tuple(
            (r["ingredient"], float(r["min_mg"]), float(r["max_mg"]), r["intensity"])
            for r in csv.DictReader(fh)
        )


@functools.cache
def _name_pattern() -> re.Pattern[str]:
    names = sorted({n for row in _drug_rows() for n in row.names}, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)


_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(MG|MCG|UNT|UNITS?)\b(?!\s*/\s*(?:ML|ACTUAT))", re.IGNORECASE
)


@dataclass(frozen=True)
class DrugClassification:
    """What the twin needs to know about one medication product."""

    ingredient: str
    treatment_class: str
    strength_mg: float | None
    dose_multiple: float | None
    statin_intensity: str


def classify_medication(name: str) -> list[DrugClassification]:
    """Recognise the cardiometabolic ingredients of a product name (one per ingredient of a combination).

    ``dose_multiple`` is the strength relative to the class's standard dose (Law 2003 definition);
    statin intensity follows the ACC/AHA 2018 table. Products the twin does not model give ``[]``.
    """
    return list(_classified(name))


@functools.cache
def _by_name() -> dict[str, DrugClassRow]:
    return {n.lower(): row for row in _drug_rows() for n in row.names}


@functools.lru_cache(maxsize=8192)
def _classified(name: str) -> tuple[DrugClassification, ...]:
    # a record repeats the same few product names thousands of times (the nightly run reads
    # every prescription of every patient): each name is parsed once per process
    by_name = _by_name()
    found: list[DrugClassification] = []
    seen: set[str] = set()
    # Each "/"-separated part of a combination product carries its own strength.
    for part in re.split(r"\s/\s", name):
        match = _name_pattern().search(part)
        if not match:
            continue
        row = by_name[match.group(1).lower()]
        if row.ingredient in seen:
            continue
        seen.add(row.ingredient)
        strength_match = _STRENGTH.search(part)
        strength = (
            float(strength_match.group(1))
            if strength_match and strength_match.group(2).upper() == "MG"
            else None
        )
        multiple = strength / row.standard_dose_mg if strength and row.standard_dose_mg else None
        intensity = ""
        if row.treatment_class == "statin" and strength is not None:
            for ingredient, low, high, band in _statin_bands():
                if ingredient == row.ingredient and low <= strength <= high:
                    intensity = band
                    break
        found.append(
            DrugClassification(row.ingredient, row.treatment_class, strength, multiple, intensity)
        )
    return tuple(found)
