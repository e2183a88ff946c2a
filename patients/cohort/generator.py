"""Deterministic synthetic demo cohort as FHIR R4 transaction bundles (Synthea's bundle shape).

Each patient is drawn from a small latent model: an untreated BP level with an age slope,
HbA1c with a yearly drift, LDL/HDL/triglycerides, weight, and eGFR with a yearly decline. Drugs act
on those latent values with first-order onset (BP over ~2 weeks, HbA1c over ~6 weeks, weight over
months) and every number behind that comes from ``data/parameters.csv`` or ``data/drugs.csv``,
each row with its source. Visits every 3-6 months (sooner after a change) produce noisy office
readings, labs, medication decisions by the clinician seen, and a note written from the same
facts (``patients.cohort.notes``).

Units: values follow Synthea's units, except that on purpose some patients' laboratories report
in SI units (glucose, total/LDL/HDL cholesterol and triglycerides in ``mmol/L``, HbA1c in
``mmol/mol``, creatinine in ``umol/L``, UACR in ``mg/mmol``) and some weights are recorded in
``[lb_av]``, so an importer's unit conversion is exercised. LOINC codes stay those Synthea uses even
for SI values (a strict coder would pick the moles/volume codes, e.g. 15074-8 for glucose).

Identifiers are uuid5 of (seed, patient index, resource counter), so a bundle is identical for the
same (index, seed, today, years). Clinicians in ``PRACTITIONERS`` have seed-independent ids.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .notes import (
    Action,
    ClosedFollowUp,
    FollowUp,
    MedChange,
    MedLine,
    NoteContext,
    NoteKind,
    PriorContact,
    write_note,
)

__all__ = [
    "PRACTITIONERS",
    "Practitioner",
    "ckd_epi_2021",
    "convert",
    "creatinine_for_egfr",
    "dose_factor",
    "drug_table",
    "generate_cohort",
    "generate_patient",
    "parameters",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
COHORT_NAMESPACE = uuid.UUID("5b0e8a8e-3f43-5c1a-9d1e-7c2f4a6b9d21")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"
OBSERVATION_SOURCE_SYSTEM = "https://twinportal.example.org/fhir/observation-source"
PRACTITIONER_ID_SYSTEM = "https://twinportal.example.org/fhir/practitioner"
ROLE_SYSTEM = "https://twinportal.example.org/fhir/practitioner-role"
COHORT_TAG = {"system": "https://twinportal.example.org/fhir/tags", "code": "synthetic-demo"}

Json = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Clinicians


@dataclass(frozen=True)
class Practitioner:
    """One clinician who writes notes; ``id``/``role_id`` are stable across seeds and runs."""

    key: str
    given: str
    family: str
    role_key: str
    gender: str

    @property
    def role(self) -> str:
        """Human-readable role ("general practitioner", "diabetes specialist nurse", ...)."""
        return self.role_key.replace("_", " ")

    @property
    def name(self) -> str:
        return self.display_name

    @property
    def id(self) -> str:
        return str(uuid.uuid5(COHORT_NAMESPACE, f"practitioner/{self.key}"))

    @property
    def role_id(self) -> str:
        return str(uuid.uuid5(COHORT_NAMESPACE, f"practitioner-role/{self.key}"))

    @property
    def is_doctor(self) -> bool:
        return self.role_key in ("general_practitioner", "cardiologist", "endocrinologist")

    @property
    def display_name(self) -> str:
        prefix = "Dr " if self.is_doctor else ""
        return f"{prefix}{self.given} {self.family}"

    @property
    def short_name(self) -> str:
        return f"Dr {self.family}" if self.is_doctor else f"{self.given} {self.family}"

    @property
    def role_code(self) -> tuple[str, str, str]:
        """(SNOMED CT occupation code, its display, the local role title)."""
        return ROLE_CODES[self.role_key]


#: SNOMED CT occupation codes; nurse roles share "Registered nurse" and are told apart by text
#: and by the local ``ROLE_SYSTEM`` coding.
ROLE_CODES: dict[str, tuple[str, str, str]] = {
    "general_practitioner": ("62247001", "General practitioner", "General practitioner"),
    "cardiologist": ("17561000", "Cardiologist", "Cardiologist"),
    "endocrinologist": ("61894003", "Endocrinologist", "Endocrinologist"),
    "diabetes_specialist_nurse": ("224535009", "Registered nurse", "Diabetes specialist nurse"),
    "practice_nurse": ("224535009", "Registered nurse", "Practice nurse"),
}

PRACTITIONERS: tuple[Practitioner, ...] = (
    Practitioner("gp-hart", "Amelia", "Hart", "general_practitioner", "female"),
    Practitioner("gp-menon", "Rajiv", "Menon", "general_practitioner", "male"),
    Practitioner("gp-lindqvist", "Sofia", "Lindqvist", "general_practitioner", "female"),
    Practitioner("gp-adeyemi", "Daniel", "Adeyemi", "general_practitioner", "male"),
    Practitioner("cardio-okafor", "Tomas", "Okafor", "cardiologist", "male"),
    Practitioner("cardio-park", "Helen", "Park", "cardiologist", "female"),
    Practitioner("endo-tanaka", "Mei", "Tanaka", "endocrinologist", "female"),
    Practitioner("dsn-whitfield", "Grace", "Whitfield", "diabetes_specialist_nurse", "female"),
    Practitioner("dsn-price", "Owen", "Price", "diabetes_specialist_nurse", "male"),
    Practitioner("pn-bennett", "Laura", "Bennett", "practice_nurse", "female"),
)


def _by_role(role: str) -> tuple[Practitioner, ...]:
    return tuple(p for p in PRACTITIONERS if p.role_key == role)


# --------------------------------------------------------------------------------------------
# Data tables (loaded once per process)


@dataclass(frozen=True)
class Drug:
    """One prescribable product from ``data/drugs.csv`` (dose per administration)."""

    key: str
    rxnorm: str
    tty: str
    display: str
    ingredient: str
    treatment_class: str
    dose: float
    dose_unit: str
    frequency: int
    period_unit: str
    route: str
    standard_dose: float
    statin_intensity: str | None
    ldl_reduction: float

    @property
    def dose_ratio(self) -> float:
        """Total dose per period as a multiple of the standard dose."""
        return self.dose * self.frequency / self.standard_dose

    @property
    def dose_text(self) -> str:
        amount = f"{self.dose:g}"
        return f"{amount} units" if self.dose_unit == "[IU]" else f"{amount} mg"

    @property
    def frequency_text(self) -> str:
        if self.period_unit == "wk":
            return "once weekly"
        if self.treatment_class == "insulin":
            return "at night"
        if self.treatment_class == "statin":
            return _STATIN_TIMING
        return "twice daily" if self.frequency == 2 else "once daily"

    def line(self) -> MedLine:
        return MedLine(self.ingredient, self.dose_text, self.frequency_text)


_STATIN_TIMING = "once daily at night"


@cache
def drug_table() -> dict[str, Drug]:
    """All drugs by key, read once from ``data/drugs.csv``."""
    with (DATA_DIR / "drugs.csv").open(encoding="utf-8", newline="") as fh:
        return {
            row["key"]: Drug(
                key=row["key"],
                rxnorm=row["rxnorm"],
                tty=row["tty"],
                display=row["display"],
                ingredient=row["ingredient"],
                treatment_class=row["treatment_class"],
                dose=float(row["dose_mg"]),
                dose_unit=row["dose_unit"],
                frequency=int(row["frequency"]),
                period_unit=row["period_unit"],
                route=row["route"],
                standard_dose=float(row["standard_dose_mg"]),
                statin_intensity=row["statin_intensity"] or None,
                ldl_reduction=float(row["ldl_reduction"] or 0.0),
            )
            for row in csv.DictReader(fh)
        }


@cache
def parameters() -> dict[str, float]:
    """Model parameters by name, read once from ``data/parameters.csv``."""
    with (DATA_DIR / "parameters.csv").open(encoding="utf-8", newline="") as fh:
        return {row["name"]: float(row["value"]) for row in csv.DictReader(fh)}


@cache
def _names() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    with (DATA_DIR / "names.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["kind"], []).append(row["value"])
    return {k: tuple(v) for k, v in out.items()}


def _drug(key: str) -> Drug:
    return drug_table()[key]


#: Dose ladders: the next product up (or down) for the same ingredient.
LADDERS: dict[str, tuple[str, ...]] = {
    "lisinopril": ("lisinopril_5", "lisinopril_10", "lisinopril_20", "lisinopril_40"),
    "ramipril": ("ramipril_2.5", "ramipril_5", "ramipril_10"),
    "losartan": ("losartan_25", "losartan_50", "losartan_100"),
    "amlodipine": ("amlodipine_5", "amlodipine_10"),
    "hydrochlorothiazide": ("hydrochlorothiazide_25",),
    "bisoprolol": ("bisoprolol_5", "bisoprolol_10"),
    "atorvastatin": ("atorvastatin_10", "atorvastatin_20", "atorvastatin_40", "atorvastatin_80"),
    "rosuvastatin": ("rosuvastatin_5", "rosuvastatin_10", "rosuvastatin_20"),
    "simvastatin": ("simvastatin_20", "simvastatin_40"),
    "metformin": ("metformin_500", "metformin_1000"),
    "empagliflozin": ("empagliflozin_10",),
    "semaglutide": ("semaglutide_0.25", "semaglutide_0.5", "semaglutide_1"),
    "glipizide": ("glipizide_5", "glipizide_10"),
    "insulin glargine": ("insulin_glargine_10", "insulin_glargine_16", "insulin_glargine_24"),
}

BP_CLASSES = ("ace_inhibitor", "arb", "ccb", "thiazide", "beta_blocker")
GLUCOSE_CLASSES = ("metformin", "sglt2_inhibitor", "glp1_ra", "sulfonylurea", "insulin")


def _step(drug: Drug, direction: int) -> Drug | None:
    ladder = LADDERS[drug.ingredient]
    i = ladder.index(drug.key) + direction
    return _drug(ladder[i]) if 0 <= i < len(ladder) else None


# --------------------------------------------------------------------------------------------
# Latent physiology


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be within [{lo}, {hi}], got {value}")


def dose_factor(ratio: float) -> float:
    """Effect multiplier for a dose relative to the standard dose, on a log2-dose scale.

    Parameters
    ----------
    ratio : float
        Total dose per period divided by the standard dose (dimensionless, > 0).

    Returns
    -------
    float
        Multiplier of the standard-dose effect, within [0.5, 1.5]. Law 2003 (BMJ 326:1427): half
        the standard dose gives about 22 % less effect; the same slope is applied above 1.
    """
    _check_range("ratio", ratio, 1e-3, 100.0)
    slope = parameters()["dose_log2_slope"]
    return min(1.5, max(0.5, 1.0 + slope * math.log2(ratio)))


def onset(start: float, end: float | None, t: float, tau: float) -> float:
    """Fraction of a drug's full effect at one time, for a course from ``start`` to ``end``.

    Parameters
    ----------
    start, end : float
        Course start and end in days (``end`` None while the course continues).
    t : float
        Time in days, on the same axis.
    tau : float
        First-order time constant in days (> 0).

    Returns
    -------
    float
        Fraction in [0, 1): a first-order rise after the start, and a first-order decay of what
        was reached once the course ends.
    """
    if t <= start:
        return 0.0
    if end is None or t <= end:
        return 1.0 - math.exp(-(t - start) / tau)
    reached = 1.0 - math.exp(-(end - start) / tau)
    return reached * math.exp(-(t - end) / tau)


@dataclass
class Episode:
    """One course of one product, from ``start`` to ``end`` (days from the record start)."""

    drug: Drug
    start: int
    requester: Practitioner
    visit: int
    end: int | None = None
    end_kind: str | None = None
    stop_reason: str = ""
    prior: Episode | None = None
    adverse: str | None = None
    adverse_day: int = 10**9
    id: str = ""

    def active(self, day: float) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    def end_or(self, day: int) -> int:
        return self.end if self.end is not None else day


@dataclass
class Person:
    """Latent per-patient parameters (values in canonical units; days from the record start)."""

    sex: str
    age_today: int
    birth: dt.date
    phenotype: str
    has_htn: bool
    has_pre: bool
    has_dm: bool
    htn_onset: int
    dm_onset: int
    pre_onset: int
    height_cm: float
    weight0: float
    weight_drift: float
    sbp0: float
    dbp0: float
    sbp_slope: float
    a1c0: float
    a1c_drift: float
    ldl0: float
    hdl0: float
    tg0: float
    egfr0: float
    egfr_slope: float
    uacr0: float
    smoking: str
    quit_day: int
    si_from_day: int
    lb_weights: bool
    home_monitoring: bool
    gp: Practitioner
    family_history: tuple[str, ...]
    bp_step2_ccb: bool = True
    episodes: list[Episode] = field(default_factory=list)

    def age_at(self, day_date: dt.date) -> int:
        years = day_date.year - self.birth.year
        return years - ((day_date.month, day_date.day) < (self.birth.month, self.birth.day))

    def on(self, day: float, classes: tuple[str, ...]) -> list[Episode]:
        return [e for e in self.episodes if e.active(day) and e.drug.treatment_class in classes]

    def weight_loss_from_drugs(self, t: float) -> float:
        p = parameters()
        total = 0.0
        for e in self.episodes:
            kg = _WEIGHT_EFFECT_KG.get(e.drug.treatment_class)
            if kg is not None:
                total += (
                    p[kg]
                    * dose_factor(e.drug.dose_ratio)
                    * onset(e.start, e.end, t, p["weight_onset_days"])
                )
        return total

    def weight_true(self, t: float) -> float:
        return self.weight0 + self.weight_drift * t / 365.25 - self.weight_loss_from_drugs(t)

    def bp_true(self, t: float) -> tuple[float, float]:
        p = parameters()
        sbp = self.sbp0 + self.sbp_slope * t / 365.25
        dbp = self.dbp0
        for e in self.episodes:
            cls = e.drug.treatment_class
            if cls in BP_CLASSES:
                f = dose_factor(e.drug.dose_ratio)
                extra = p["bp_drug_baseline_slope"] * (self.sbp0 - p["bp_drug_reference_sbp"])
                frac = onset(e.start, e.end, t, p["bp_onset_days"])
                sbp -= max(3.0, p["bp_drug_sbp_standard"] * f + extra) * frac
                dbp -= p["bp_drug_dbp_standard"] * f * frac
            elif cls == "sglt2_inhibitor":
                sbp -= p["sglt2_sbp"] * onset(e.start, e.end, t, p["bp_onset_days"])
        loss = self.weight_loss_from_drugs(t)
        return sbp - p["weight_sbp_per_kg"] * loss, dbp - p["weight_dbp_per_kg"] * loss

    def a1c_true(self, t: float) -> float:
        p = parameters()
        a1c = self.a1c0 + self.a1c_drift * t / 365.25
        for e in self.episodes:
            name = _HBA1C_EFFECT.get(e.drug.treatment_class)
            if name is not None:
                f = dose_factor(e.drug.dose_ratio)
                a1c -= p[name] * f * onset(e.start, e.end, t, p["hba1c_onset_days"])
        a1c -= p["hba1c_per_kg"] * self.weight_loss_from_drugs(t)
        return max(4.6, a1c)

    def ldl_true(self, t: float) -> float:
        p = parameters()
        ldl = self.ldl0
        for e in self.episodes:
            if e.drug.treatment_class == "statin":
                ldl *= 1.0 - e.drug.ldl_reduction * onset(e.start, e.end, t, p["statin_onset_days"])
        return ldl

    def egfr_true(self, t: float) -> float:
        return max(12.0, self.egfr0 + self.egfr_slope * t / 365.25)


_HBA1C_EFFECT = {
    "metformin": "metformin_hba1c_standard",
    "sulfonylurea": "sulfonylurea_hba1c_standard",
    "sglt2_inhibitor": "sglt2_hba1c_standard",
    "glp1_ra": "glp1_hba1c_standard",
    "insulin": "insulin_hba1c_standard",
}
_WEIGHT_EFFECT_KG = {
    "sglt2_inhibitor": "sglt2_weight_kg",
    "glp1_ra": "glp1_weight_kg",
    "insulin": "insulin_weight_kg",
    "sulfonylurea": "sulfonylurea_weight_kg",
}


def ckd_epi_2021(creatinine_mg_dl: float, age: float, sex: str) -> float:
    """eGFR from serum creatinine by the race-free CKD-EPI 2021 equation (Inker 2021 NEJM).

    Parameters
    ----------
    creatinine_mg_dl : float
        Serum creatinine in mg/dL, within (0, 20].
    age : float
        Age in years, within [18, 120].
    sex : str
        "female" or "male".

    Returns
    -------
    float
        eGFR in mL/min/1.73 m2.
    """
    _check_range("creatinine_mg_dl", creatinine_mg_dl, 1e-3, 20.0)
    _check_range("age", age, 18.0, 120.0)
    p = parameters()
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    egfr = (
        p["ckd_epi_2021_constant"]
        * min(ratio, 1.0) ** alpha
        * max(ratio, 1.0) ** p["ckd_epi_2021_exp_high"]
        * p["ckd_epi_2021_age_base"] ** age
    )
    return float(egfr * (p["ckd_epi_2021_female_factor"] if sex == "female" else 1.0))


def creatinine_for_egfr(egfr: float, age: float, sex: str) -> float:
    """Invert :func:`ckd_epi_2021`.

    Parameters
    ----------
    egfr : float
        eGFR in mL/min/1.73 m2, within [1, 200].
    age : float
        Age in years, within [18, 120].
    sex : str
        "female" or "male".

    Returns
    -------
    float
        Serum creatinine in mg/dL that gives ``egfr``.
    """
    _check_range("egfr", egfr, 1.0, 200.0)
    _check_range("age", age, 18.0, 120.0)
    p = parameters()
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    base = p["ckd_epi_2021_constant"] * p["ckd_epi_2021_age_base"] ** age
    if sex == "female":
        base *= p["ckd_epi_2021_female_factor"]
    # Above kappa the high exponent applies; below it the low one.
    ratio = (egfr / base) ** (1.0 / p["ckd_epi_2021_exp_high"])
    if ratio < 1.0:
        ratio = (egfr / base) ** (1.0 / alpha)
    return float(ratio * kappa)


# --------------------------------------------------------------------------------------------
# Visits


@dataclass
class Change:
    """A medication decision at a visit."""

    action: Action
    new: Episode | None
    old: Episode | None
    reason: str = ""


@dataclass
class OpenFollowUp:
    kind: str
    text: str
    due: int
    set_by: Practitioner


@dataclass
class Visit:
    """One clinic contact: what was measured, decided and written."""

    no: int
    day: int
    minute: int
    practitioner: Practitioner
    kind: NoteKind
    encounter_id: str
    sbp: int = 0
    dbp: int = 0
    weight: float = 0.0
    height: float | None = None
    labs: dict[str, float] = field(default_factory=dict)
    si: bool = False
    weight_lb: bool = False
    smoking: str | None = None
    active: list[Episode] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    followups_new: list[OpenFollowUp] = field(default_factory=list)
    followups_closed: list[tuple[OpenFollowUp, str]] = field(default_factory=list)
    hypothetical: str | None = None
    referral: tuple[str, str] | None = None
    findings: list[str] = field(default_factory=list)
    bp_status: str = "controlled"
    glucose_status: str | None = None


@dataclass
class HomeReading:
    day: int
    minute: int
    sbp: int
    dbp: int


# --------------------------------------------------------------------------------------------
# Per-patient simulation


def _seed_int(seed: int, index: int, stream: str) -> int:
    digest = hashlib.blake2b(f"{seed}/{index}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class _Ids:
    """Deterministic uuid5 ids for one patient's resources."""

    def __init__(self, seed: int, index: int) -> None:
        self.prefix = f"{seed}/{index}/"
        self.count = 0
        # uuid5 is sha1(namespace + name); hashing the shared prefix once is the hot-path saving.
        self._base = hashlib.sha1(
            COHORT_NAMESPACE.bytes + self.prefix.encode(), usedforsecurity=False
        )

    def next(self, kind: str) -> str:
        """Equal to ``str(uuid.uuid5(COHORT_NAMESPACE, prefix + f"{kind}/{n}"))``."""
        self.count += 1
        h = self._base.copy()
        h.update(f"{kind}/{self.count}".encode())
        b = bytearray(h.digest()[:16])
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        x = b.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _normal(rng: random.Random, mean: float, sd: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, rng.gauss(mean, sd)))


FAMILY_HISTORY = (
    "father had a myocardial infarction at 58",
    "mother has type 2 diabetes",
    "brother with hypertension",
    "mother had a stroke in her seventies",
    "father has type 2 diabetes",
    "no premature cardiovascular disease in the family",
    "sister with high cholesterol",
)


def _make_person(rng: random.Random, today: dt.date, total_days: int) -> Person:
    """Draw one patient's latent parameters.

    Means and medians come from ``parameters.csv``; the spreads and clipping ranges written inline
    below are demo assumptions that keep values physiologically plausible.
    """
    p = parameters()
    u = rng.random()
    phenotype = (
        "htn"
        if u < p["mix_hypertension_only"]
        else "pre"
        if u < p["mix_hypertension_only"] + p["mix_prediabetes"]
        else "t2d"
    )
    has_dm = phenotype == "t2d"
    has_pre = phenotype == "pre"
    has_htn = (
        phenotype == "htn"
        or (has_pre and rng.random() < p["p_htn_given_prediabetes"])
        or (has_dm and rng.random() < p["p_htn_given_diabetes"])
    )
    sex = "female" if rng.random() < (0.45 if has_dm else 0.5) else "male"
    # Ages 35-85 today, and at least 30 at the start of a long record.
    lowest = min(85, max(35, 30 + total_days / 365.25))
    age = round(_normal(rng, p["age_mean"], p["age_sd"], lowest, 85))
    birth = today - dt.timedelta(days=int(age * 365.25) + rng.randrange(365))
    height = _normal(
        rng,
        p["height_mean_male_cm"] if sex == "male" else p["height_mean_female_cm"],
        p["height_sd_cm"],
        145,
        200,
    )
    bmi_median = p[
        "bmi_median_diabetes"
        if has_dm
        else "bmi_median_prediabetes"
        if has_pre
        else "bmi_median_htn"
    ]
    bmi = min(52.0, max(19.0, bmi_median * math.exp(rng.gauss(0, p["bmi_log_sd"]))))
    weight0 = bmi * (height / 100) ** 2
    age_start = age - total_days / 365.25

    def onset_day(new_p: float) -> int:
        if rng.random() < new_p:
            return 0
        years_before = rng.uniform(0.5, min(12.0, max(0.6, age_start - 30)))
        return -int(years_before * 365.25)

    if has_htn:
        sbp0 = _normal(rng, p["sbp_untreated_mean"], p["sbp_untreated_sd"], 138, 188)
        dbp0 = _normal(
            rng, p["dbp_untreated_mean"] - 0.3 * (age - 55), p["dbp_untreated_sd"], 72, 112
        )
    else:
        sbp0 = _normal(rng, p["sbp_normotensive_mean"], 7, 108, 136)
        dbp0 = _normal(rng, 78, 6, 62, 88)
    if has_dm:
        a1c0 = _normal(rng, p["hba1c_diabetes_untreated_mean"], 0.9, 6.7, 11.0)
        a1c_drift = rng.uniform(p["hba1c_drift_diabetes_low"], p["hba1c_drift_diabetes_high"])
    elif has_pre:
        a1c0 = _normal(rng, p["hba1c_prediabetes_mean"], 0.2, 5.7, 6.4)
        a1c_drift = p["hba1c_drift_prediabetes"] * rng.uniform(0.3, 1.5)
    else:
        a1c0 = _normal(rng, p["hba1c_normal_mean"], 0.15, 4.9, 5.6)
        a1c_drift = 0.02
    egfr0 = _normal(
        rng,
        p["egfr_age40"] + p["egfr_age_slope"] * (age_start - 40) - (5 if has_dm else 0),
        p["egfr_between_sd"],
        28,
        125,
    )
    egfr_slope = (
        rng.gauss(p["egfr_decline_diabetes"], 1.0)
        if has_dm
        else rng.gauss(p["egfr_decline_other"], 0.6)
    )
    s = rng.random()
    smoking = (
        "current"
        if s < p["p_current_smoker"]
        else "ex"
        if s < p["p_current_smoker"] + p["p_ex_smoker"]
        else "never"
    )
    quit_day = 10**9
    if smoking == "current" and rng.random() < p["p_quit_during_record"]:
        quit_day = rng.randrange(60, max(61, total_days - 60))
    si_from = (
        rng.randrange(0, max(1, total_days // 2)) if rng.random() < p["SI_lab_fraction"] else 10**9
    )
    hdl_mean = p["hdl_mean_male"] if sex == "male" else p["hdl_mean_female"]
    return Person(
        sex=sex,
        age_today=age,
        birth=birth,
        phenotype=phenotype,
        has_htn=has_htn,
        has_pre=has_pre,
        has_dm=has_dm,
        htn_onset=onset_day(0.35) if has_htn else 10**9,
        dm_onset=onset_day(0.35) if has_dm else 10**9,
        pre_onset=onset_day(0.4) if has_pre else 10**9,
        height_cm=height,
        weight0=weight0,
        weight_drift=rng.gauss(p["weight_drift_mean"], p["weight_drift_sd"]),
        sbp0=sbp0,
        dbp0=dbp0,
        sbp_slope=rng.uniform(p["sbp_age_slope_low"], p["sbp_age_slope_high"]),
        a1c0=a1c0,
        a1c_drift=a1c_drift,
        ldl0=_normal(rng, p["ldl_mean"], p["ldl_sd"], 70, 240),
        hdl0=_normal(rng, hdl_mean - (4 if has_dm else 0), p["hdl_sd"], 25, 95),
        tg0=min(
            600.0,
            p["tg_median_diabetes" if has_dm else "tg_median"]
            * math.exp(rng.gauss(0, p["tg_log_sd"])),
        ),
        egfr0=egfr0,
        egfr_slope=egfr_slope,
        uacr0=min(
            900.0,
            p["uacr_median_diabetes" if has_dm else "uacr_median"]
            * math.exp(rng.gauss(0, p["uacr_log_sd"])),
        ),
        smoking=smoking,
        quit_day=quit_day,
        si_from_day=si_from,
        lb_weights=rng.random() < p["lb_weight_fraction"],
        home_monitoring=has_htn and rng.random() < p["p_home_monitoring"],
        gp=rng.choice(_by_role("general_practitioner")),
        family_history=tuple(rng.sample(FAMILY_HISTORY, k=rng.randint(1, 2))),
        bp_step2_ccb=rng.random() < 0.6,
    )


class _Simulation:
    """Runs one patient's record: visits, readings, decisions and home readings."""

    def __init__(
        self, person: Person, rng: random.Random, ids: _Ids, total_days: int, start: dt.date
    ) -> None:
        self.start_date = start
        self.p = parameters()
        self.person = person
        self.rng = rng
        self.ids = ids
        self.total_days = total_days
        self.visits: list[Visit] = []
        self.home: list[HomeReading] = []
        self.open: list[OpenFollowUp] = []
        self.referral_due: tuple[str, int, str, Practitioner] | None = None
        self.referred: set[str] = set()
        self.last_annual = -(10**9)
        self.last_lab: dict[str, int] = {}
        self.htn_diagnosed = person.has_htn and person.htn_onset < 0
        self.dm_diagnosed = person.has_dm and person.dm_onset < 0
        self.home_windows = 0
        self.pending_restart: Episode | None = None
        self.cough_onset: int | None = None
        self.cough_resolved: int | None = None

    # -- episodes ---------------------------------------------------------------------------
    def start(
        self, key: str, day: int, by: Practitioner, visit: int, prior: Episode | None = None
    ) -> Episode:
        drug = _drug(key)
        ep = Episode(drug=drug, start=day, requester=by, visit=visit, prior=prior)
        ep.id = self.ids.next("medrx")
        self._maybe_adverse(ep)
        self.person.episodes.append(ep)
        return ep

    def _maybe_adverse(self, ep: Episode) -> None:
        p, rng, cls = self.p, self.rng, ep.drug.treatment_class
        table = {
            "ace_inhibitor": ("a dry cough", p["p_ace_cough"], (14, 150)),
            "statin": ("muscle aches", p["p_statin_myalgia"], (20, 200)),
            "metformin": ("gastrointestinal upset", p["p_metformin_gi"], (5, 60)),
        }
        if ep.drug.key == "amlodipine_10":
            table["ccb"] = ("ankle swelling", p["p_amlodipine_oedema"], (14, 120))
        if cls == "thiazide":
            table["thiazide"] = ("an attack of gout", p["p_thiazide_gout"], (30, 300))
        if cls in table and (ep.prior is None or ep.prior.drug.ingredient != ep.drug.ingredient):
            what, prob, (lo, hi) = table[cls]
            if rng.random() < prob:
                ep.adverse = what
                ep.adverse_day = ep.start + rng.randint(lo, hi)
                if cls == "ace_inhibitor":
                    self.cough_onset = ep.adverse_day

    def end(self, ep: Episode, day: int, kind: str, reason: str = "") -> None:
        ep.end, ep.end_kind, ep.stop_reason = day, kind, reason

    def change(
        self,
        visit: Visit,
        action: Action,
        old: Episode | None,
        new_key: str | None,
        reason: str = "",
    ) -> None:
        day, by = visit.day, visit.practitioner
        new = None
        if old is not None:
            self.end(
                old, day, "completed" if action in ("increase", "decrease") else "stopped", reason
            )
        if new_key is not None:
            prior = old if action in ("increase", "decrease", "switch") else None
            new = self.start(new_key, day, by, visit.no, prior)
        visit.changes.append(Change(action, new, old, reason))

    # -- pre-record history -----------------------------------------------------------------
    def seed_history(self) -> None:
        person, rng = self.person, self.rng
        gp = person.gp
        if self.htn_diagnosed:
            first = self._first_line_bp(person.age_at(self._date(person.htn_onset)))
            s = person.htn_onset + rng.randint(20, 120)
            self.start(rng.choice(LADDERS[first][:2]), min(s, -10), gp, -1)
            if rng.random() < 0.4:
                second = "lisinopril_10" if first == "amlodipine" else "amlodipine_5"
                if first != "amlodipine" and not person.bp_step2_ccb:
                    second = "hydrochlorothiazide_25"
                self.start(
                    second,
                    min(s + 200, -5),
                    gp,
                    -1,
                )
        if self.dm_diagnosed:
            s = min(-10, person.dm_onset + rng.randint(10, 90))
            self.start(rng.choice(("metformin_500", "metformin_1000")), s, gp, -1)
            if rng.random() < 0.25:
                self.start(
                    rng.choice(("empagliflozin_10", "glipizide_5")), min(-5, s + 300), gp, -1
                )
        statin_p = (
            0.6 if (person.has_dm and self.dm_diagnosed) else 0.25 if self.htn_diagnosed else 0.05
        )
        if rng.random() < statin_p:
            key = rng.choice(
                ("atorvastatin_20", "atorvastatin_20", "atorvastatin_10", "simvastatin_40")
            )
            self.start(key, -rng.randint(60, 1500), gp, -1)
        for ep in self.person.episodes:
            # Side effects of long-standing drugs would already have been dealt with.
            if ep.adverse_day < 0:
                ep.adverse, ep.adverse_day = None, 10**9
        if self.cough_onset is not None and self.cough_onset < 0:
            self.cough_onset = None

    def _first_line_bp(self, age: int) -> str:
        # NICE NG136: ACEi/ARB under 55 or with type 2 diabetes, otherwise a CCB.
        if age < 55 or self.person.has_dm:
            return (
                "losartan"
                if self.rng.random() < 0.2
                else self.rng.choice(("lisinopril", "ramipril"))
            )
        return "amlodipine"

    # -- helpers --------------------------------------------------------------------------
    def _date(self, day: int) -> dt.date:
        return self.start_date + dt.timedelta(days=day)

    def _measure(self, visit: Visit) -> None:
        person, rng, p = self.person, self.rng, self.p
        t = visit.day
        sbp, dbp = person.bp_true(t)
        visit.sbp = round(sbp + rng.gauss(0, p["sbp_office_within_sd"]))
        visit.dbp = round(dbp + rng.gauss(0, p["dbp_office_within_sd"]))
        visit.weight = round(person.weight_true(t) + rng.gauss(0, p["weight_within_sd"]), 1)
        visit.si = t >= person.si_from_day
        visit.weight_lb = person.lb_weights and visit.no % 2 == 1
        annual = visit.kind in ("hp",) or (
            t - self.last_annual >= 330 and visit.practitioner.role_key == "practice_nurse"
        )
        if annual:
            self.last_annual = t
            visit.height = round(person.height_cm + rng.gauss(0, 0.4), 1)
            visit.smoking = self._smoking_status(t)
            self._labs(visit, ("hba1c", "glucose", "lipids", "renal", "uacr"))
        else:
            wanted: list[str] = []
            if (
                person.has_dm
                and t - self.last_lab.get("hba1c", -999) >= 80
                and visit.practitioner.role_key != "cardiologist"
            ):
                wanted += ["hba1c", "glucose"]
            if any(f.kind == "lipids" and t >= f.due - 45 for f in self.open):
                wanted.append("lipids")
            if any(f.kind == "renal" for f in self.open):
                wanted.append("renal")
            if (
                any(f.kind == "hba1c" and t >= f.due - 45 for f in self.open)
                and "hba1c" not in wanted
            ):
                wanted.append("hba1c")
            if (
                visit.practitioner.role_key in ("cardiologist", "endocrinologist")
                and t - self.last_lab.get("renal", -999) > 60
            ):
                wanted.append("renal")
            self._labs(visit, tuple(wanted))

    def _smoking_status(self, t: int) -> str:
        s = self.person.smoking
        if s == "current" and t >= self.person.quit_day:
            return "ex"
        return s

    def _labs(self, visit: Visit, groups: tuple[str, ...]) -> None:
        person, rng, p = self.person, self.rng, self.p
        t = visit.day
        labs = visit.labs
        if "hba1c" in groups:
            a1c = person.a1c_true(t)
            labs["hba1c"] = round(a1c + rng.gauss(0, p["hba1c_within_sd"]), 1)
            self.last_lab["hba1c"] = t
        if "glucose" in groups:
            eag = 28.7 * person.a1c_true(t) - 46.7
            labs["glucose"] = round(
                max(65.0, eag + p["glucose_fasting_offset"] + rng.gauss(0, p["glucose_within_sd"]))
            )
        if "lipids" in groups:
            ldl = person.ldl_true(t) * (1 + rng.gauss(0, p["ldl_within_cv"]))
            hdl = person.hdl0 + rng.gauss(0, 3.5)
            tg = person.tg0 * math.exp(rng.gauss(0, 0.18))
            labs["ldl"] = round(ldl)
            labs["hdl"] = round(hdl)
            labs["triglycerides"] = round(tg)
            labs["total_chol"] = round(ldl + hdl + tg / p["friedewald_tg_divisor"])
            self.last_lab["lipids"] = t
        if "renal" in groups:
            age = person.age_at(self._date(t))
            true_cr = creatinine_for_egfr(person.egfr_true(t), age, person.sex)
            cr = round(true_cr * (1 + rng.gauss(0, p["creatinine_within_cv"])), 2)
            labs["creatinine"] = cr
            labs["egfr"] = round(ckd_epi_2021(cr, age, person.sex))
            self.last_lab["renal"] = t
        if "uacr" in groups and (person.has_dm or person.has_htn):
            labs["uacr"] = round(person.uacr0 * math.exp(rng.gauss(0, p["uacr_within_log_sd"])), 1)

    # -- the visit loop ------------------------------------------------------------------
    def run(self) -> None:
        self.seed_history()
        day = self.rng.randint(0, 21)
        no = 0
        while day <= self.total_days:
            visit = self._new_visit(no, day)
            visit.active = [e for e in self.person.episodes if e.active(day)]
            self._measure(visit)
            self._close_followups(visit)
            self._decide(visit)
            next_day = day + self._interval(visit)
            if self.referral_due and self.referral_due[1] < next_day:
                next_day = max(day + 7, self.referral_due[1])
            self._home_window(visit, next_day)
            self.visits.append(visit)
            day, no = next_day, no + 1

    def _new_visit(self, no: int, day: int) -> Visit:
        person, rng = self.person, self.rng
        kind: NoteKind
        if no == 0:
            who, kind = person.gp, "hp"
        elif self.referral_due is not None and day >= self.referral_due[1]:
            role = self.referral_due[0]
            who, kind = rng.choice(_by_role(role)), "consult"
        elif day - self.last_annual >= 330:
            who, kind = _by_role("practice_nurse")[0], "nurse"
        elif person.has_dm and (
            no % 3 == 2
            or (
                any(
                    e.drug.treatment_class in ("insulin", "glp1_ra")
                    for e in person.on(day, GLUCOSE_CLASSES)
                )
                and no % 2 == 0
            )
        ):
            who, kind = rng.choice(_by_role("diabetes_specialist_nurse")), "dsn"
        else:
            who = person.gp if rng.random() < 0.8 else rng.choice(_by_role("general_practitioner"))
            kind = "progress"
        minute = rng.randrange(8 * 60 + 30, 17 * 60, 10)
        return Visit(
            no=no,
            day=day,
            minute=minute,
            practitioner=who,
            kind=kind,
            encounter_id=self.ids.next("enc"),
        )

    def _interval(self, visit: Visit) -> int:
        if (
            visit.changes
            or visit.referral
            or (visit.no == 0 and not self.htn_diagnosed and self.person.has_htn)
        ):
            return self.rng.randint(
                int(self.p["review_after_change_min_days"]),
                int(self.p["review_after_change_max_days"]),
            )
        return self.rng.randint(
            int(self.p["visit_interval_min_days"]), int(self.p["visit_interval_max_days"])
        )

    # -- decisions ---------------------------------------------------------------------------
    def _decide(self, visit: Visit) -> None:
        role = visit.practitioner.role_key
        if visit.kind == "consult":
            self.referral_due = None
        self._adverse_effects(visit)
        if role in ("general_practitioner", "cardiologist"):
            self._bp(visit)
        elif self.person.has_htn:
            self._bp_status_only(visit)
        if self.person.has_dm or self.person.has_pre:
            self._glucose(visit)
        if role in ("general_practitioner", "cardiologist"):
            self._lipids(visit)
        self._maybe_refer(visit)
        self._routine_followups(visit)

    def _adverse_effects(self, visit: Visit) -> None:
        day, role = visit.day, visit.practitioner.role_key
        prescriber = visit.practitioner.is_doctor
        if (
            self.pending_restart is not None
            and prescriber
            and day - self.pending_restart.end_or(day) >= 14
        ):
            ep = self.pending_restart
            self.pending_restart = None
            self.change(visit, "start", None, ep.drug.key, "restart")
        for ep in list(visit.active):
            if (
                role == "cardiologist"
                and ep.drug.treatment_class == "ace_inhibitor"
                and ep.adverse is None
                and self.rng.random() < self.p["p_cardiology_elicits_cough"]
            ):
                # A dry cough that nobody had linked to the ACE inhibitor comes up at the consult.
                ep.adverse, ep.adverse_day = "a dry cough", day
                if self.cough_onset is None:
                    self.cough_onset = max(ep.start, day - self.rng.randint(30, 120))
            if ep.adverse is None or ep.adverse_day > day or not ep.active(day):
                continue
            visit.findings.append(f"{ep.adverse} since starting {ep.drug.ingredient}")
            cls = ep.drug.treatment_class
            if role == "diabetes_specialist_nurse" and cls == "metformin":
                down = _step(ep.drug, -1)
                if down is not None:
                    self.change(visit, "decrease", ep, down.key, ep.adverse)
                else:
                    self.change(visit, "hold", ep, None, ep.adverse)
                    self.pending_restart = ep
                continue
            deferred = (
                cls == "ace_inhibitor"
                and self.referral_due is not None
                and self.referral_due[0] == "cardiologist"
            )
            if not prescriber or deferred:
                who = "at the cardiology appointment" if deferred else "with GP"
                text = f"Discuss {ep.adverse} on {ep.drug.ingredient} {who}"
                if not any(f.text == text for f in self.open):
                    kind = "cardio_review" if deferred else "gp_review"
                    self._followup(visit, kind, text, 14)
                continue
            if cls == "ace_inhibitor":
                self.change(visit, "switch", ep, "losartan_50", ep.adverse)
                self.cough_resolved = day + 30
            elif cls == "ccb":
                self.change(visit, "decrease", ep, "amlodipine_5", ep.adverse)
            elif cls == "statin":
                target = (
                    "rosuvastatin_10" if ep.drug.ingredient != "rosuvastatin" else "rosuvastatin_5"
                )
                self.change(visit, "switch", ep, target, ep.adverse)
            elif cls == "metformin":
                down = _step(ep.drug, -1)
                self.change(
                    visit,
                    "decrease" if down else "hold",
                    ep,
                    down.key if down else None,
                    ep.adverse,
                )
                if down is None:
                    self.pending_restart = ep
            elif cls == "thiazide":
                self.change(visit, "stop", ep, None, ep.adverse)
            ep.adverse = None

    def _bp_target(self, visit: Visit) -> tuple[float, float]:
        age = self.person.age_at(self._date(visit.day))
        return (self.p["target_sbp_80plus"] if age >= 80 else self.p["target_sbp"]), self.p[
            "target_dbp"
        ]

    def _above(self, visit: Visit, sbp_t: float, dbp_t: float) -> bool:
        """Whether BP is above target on the mean of today's and the previous office reading.

        Single office readings carry ~10 mmHg of noise, so clinicians act on averages.
        """
        sbp, dbp = float(visit.sbp), float(visit.dbp)
        prev = self.visits[-1] if self.visits else None
        if prev is not None and visit.day - prev.day <= 200 and not visit.changes:
            sbp, dbp = (sbp + prev.sbp) / 2, (dbp + prev.dbp) / 2
        above = sbp >= sbp_t or dbp >= dbp_t
        if not above and (visit.sbp >= sbp_t or visit.dbp >= dbp_t):
            visit.bp_status = "borderline"
        return above

    def _bp_status_only(self, visit: Visit) -> None:
        sbp_t, dbp_t = self._bp_target(visit)
        above = self._above(visit, sbp_t, dbp_t)
        if visit.bp_status != "borderline" or above:
            visit.bp_status = "above" if above else "controlled"
        if above and self.htn_diagnosed and visit.practitioner.role_key == "practice_nurse":
            fu = OpenFollowUp(
                "gp_bp",
                f"BP {visit.sbp}/{visit.dbp} above target - message sent to {self.person.gp.short_name} to review",
                visit.day + 14,
                visit.practitioner,
            )
            self.open.append(fu)
            visit.followups_new.append(fu)

    def _bp(self, visit: Visit) -> None:
        person, rng, day = self.person, self.rng, visit.day
        if not person.has_htn:
            visit.bp_status = "none" if visit.sbp < 140 else "controlled"
            return
        sbp_t, dbp_t = self._bp_target(visit)
        cardio = visit.practitioner.role_key == "cardiologist"
        above = self._above(visit, sbp_t - (5 if cardio else 0), dbp_t)
        if not self.htn_diagnosed:
            if visit.no == 0:
                visit.bp_status = "suspected"
                fu = OpenFollowUp(
                    "home_bp",
                    "Home BP monitoring for 2-4 weeks to confirm the diagnosis; bring readings",
                    day + 28,
                    visit.practitioner,
                )
                self.open.append(fu)
                visit.followups_new.append(fu)
                return
            self.htn_diagnosed = True
            person.htn_onset = day
            visit.bp_status = "new"
            first = self._first_line_bp(person.age_at(self._date(day)))
            self.change(visit, "start", None, LADDERS[first][1 if first != "amlodipine" else 0])
            self._renal_check(visit)
            return
        if visit.bp_status != "borderline" or above:
            visit.bp_status = "above" if above else "controlled"
        if cardio:
            beta = next((e for e in person.on(day, ("beta_blocker",)) if e.end is None), None)
            if beta is not None and rng.random() < self.p["p_cardiology_stops_beta_blocker"]:
                self.change(
                    visit, "stop", beta, None, "no compelling indication for a beta-blocker"
                )
            thiazide = next((e for e in person.on(day, ("thiazide",)) if e.end is None), None)
            if thiazide is not None and rng.random() < 0.15:
                self.change(visit, "stop", thiazide, None, "gout")
        if not above:
            return
        if visit.changes and not cardio:
            return
        bp_eps = person.on(day, BP_CLASSES)
        if rng.random() > self.p["p_intensify"] and not cardio:
            nxt = self._next_bp_drug(bp_eps)
            if nxt is not None:
                visit.hypothetical = rng.choice(
                    (
                        f"If BP remains above {int(sbp_t)}/{int(dbp_t)} at the next review, consider adding {_drug(nxt).ingredient} {_drug(nxt).dose_text}.",
                        f"Consider {_drug(nxt).ingredient} {_drug(nxt).dose_text} if home readings stay high.",
                    )
                )
            fu = OpenFollowUp(
                "bp_review", "Return in 6 weeks for BP review", day + 42, visit.practitioner
            )
            self.open.append(fu)
            visit.followups_new.append(fu)
            return
        if (
            len({e.drug.treatment_class for e in bp_eps}) >= 3
            and "cardiology" not in self.referred
            and not cardio
        ):
            self._refer(
                visit, "cardiologist", "cardiology", "resistant hypertension on three agents"
            )
            return
        increasable = [
            e for e in bp_eps if _step(e.drug, 1) is not None and e.drug.dose_ratio < 2.0
        ]
        nxt = self._next_bp_drug(bp_eps)
        if increasable and (nxt is None or rng.random() < 0.5):
            ep = rng.choice(increasable)
            up = _step(ep.drug, 1)
            assert up is not None
            self.change(visit, "increase", ep, up.key, "BP above target")
            if ep.drug.treatment_class in ("ace_inhibitor", "arb"):
                self._renal_check(visit)
        elif nxt is not None:
            self.change(visit, "start", None, nxt, "BP above target")
            if _drug(nxt).treatment_class in ("ace_inhibitor", "arb", "thiazide"):
                self._renal_check(visit)

    def _next_bp_drug(self, bp_eps: list[Episode]) -> str | None:
        """NICE NG136 order: ACEi/ARB, then a CCB or a thiazide, then the other, then a beta-blocker."""
        classes = {e.drug.treatment_class for e in bp_eps}
        if not classes & {"ace_inhibitor", "arb"}:
            return "lisinopril_10" if "arb" not in classes else None
        missing = [c for c in ("ccb", "thiazide") if c not in classes]
        if missing:
            pick = (
                missing[0]
                if len(missing) == 1
                else ("ccb" if self.person.bp_step2_ccb else "thiazide")
            )
            return "amlodipine_5" if pick == "ccb" else "hydrochlorothiazide_25"
        if "beta_blocker" not in classes:
            return "bisoprolol_5"
        return None

    def _renal_check(self, visit: Visit) -> None:
        fu = OpenFollowUp(
            "renal",
            "Check U&E and eGFR after the ACE inhibitor/ARB change",
            visit.day + 14,
            visit.practitioner,
        )
        self.open.append(fu)
        visit.followups_new.append(fu)

    def _maybe_refer(self, visit: Visit) -> None:
        """Occasional specialist referrals beyond the rule-driven ones, once per specialty."""
        rng = self.rng
        if visit.practitioner.role_key != "general_practitioner" or visit.referral or visit.no < 2:
            return
        if self.referral_due is not None:
            return
        if (
            self.htn_diagnosed
            and "cardiology" not in self.referred
            and rng.random() < self.p["p_referral_cardiology_per_visit"]
        ):
            reason = rng.choice(
                (
                    "review of cardiovascular risk and blood pressure treatment",
                    "an opinion on blood pressure management",
                    "palpitations and hypertension",
                )
            )
            self._refer(visit, "cardiologist", "cardiology", reason)
        elif self.dm_diagnosed and "endocrinology" not in self.referred:
            a1c = self._last_a1c(visit)
            if (
                a1c is not None
                and a1c >= self.p["referral_hba1c"]
                and rng.random() < self.p["p_referral_endocrinology"]
            ):
                self._refer(
                    visit, "endocrinologist", "endocrinology", "HbA1c persistently above target"
                )

    def _refer(self, visit: Visit, role: str, specialty: str, reason: str) -> None:
        self.referred.add(specialty)
        self.referral_due = (role, visit.day + self.rng.randint(21, 56), reason, visit.practitioner)
        visit.referral = (specialty, reason)

    def _last_a1c(self, visit: Visit) -> float | None:
        for v in [visit, *reversed(self.visits)]:
            if "hba1c" in v.labs and visit.day - v.day <= 120:
                return v.labs["hba1c"]
        return None

    def _glucose(self, visit: Visit) -> None:
        person, _rng, day, role = self.person, self.rng, visit.day, visit.practitioner.role_key
        a1c = self._last_a1c(visit)
        if person.has_pre and not person.has_dm:
            if a1c is not None:
                visit.glucose_status = f"Prediabetes, HbA1c {self._a1c_text(a1c, visit)}."
            if (
                role == "general_practitioner"
                and not any(f.kind == "dpp" for f in self.open)
                and "dpp" not in self.referred
            ):
                self.referred.add("dpp")
                fu = OpenFollowUp(
                    "dpp",
                    "Refer to the diabetes prevention programme (diet and activity)",
                    day + 120,
                    visit.practitioner,
                )
                self.open.append(fu)
                visit.followups_new.append(fu)
            return
        if a1c is None:
            return
        glucose_eps = person.on(day, GLUCOSE_CLASSES)
        if not self.dm_diagnosed:
            if a1c >= self.p["diagnosis_hba1c"] and role == "general_practitioner":
                self.dm_diagnosed = True
                person.dm_onset = day
                visit.glucose_status = (
                    f"New diagnosis of type 2 diabetes, HbA1c {self._a1c_text(a1c, visit)}."
                )
                self.change(visit, "start", None, "metformin_500", "new type 2 diabetes")
                self._followup(visit, "hba1c", "Recheck HbA1c in 3 months", 90)
                self._followup(visit, "retinal", "Refer to ophthalmology for retinal screening", 90)
            return
        target = self.p["target_hba1c"]
        visit.glucose_status = f"Type 2 diabetes, HbA1c {self._a1c_text(a1c, visit)} - " + (
            "at target." if a1c < target else "above target."
        )
        if any(c.new and c.new.drug.treatment_class in GLUCOSE_CLASSES for c in visit.changes):
            return
        if role == "endocrinologist":
            self._endocrine(visit, a1c, glucose_eps)
        elif role == "diabetes_specialist_nurse":
            self._titrate(visit, a1c, glucose_eps)
        elif role == "general_practitioner":
            self._gp_glucose(visit, a1c, glucose_eps)
        if (
            role in ("general_practitioner", "diabetes_specialist_nurse")
            and a1c >= target
            and not any(f.kind == "hba1c" for f in self.open)
        ):
            self._followup(visit, "hba1c", "Recheck HbA1c in 3 months", 90)
        if role == "general_practitioner" and day - self.last_lab.get("retinal_ref", -999) > 330:
            self.last_lab["retinal_ref"] = day
            if not any(f.kind == "retinal" for f in self.open):
                self._followup(visit, "retinal", "Refer to ophthalmology for retinal screening", 90)

    def _a1c_text(self, a1c: float, visit: Visit) -> str:
        if visit.si and "hba1c" in visit.labs:
            return f"{round((a1c - self.p['ifcc_intercept']) / self.p['ifcc_slope'])} mmol/mol"
        return f"{a1c:.1f}%"

    def _followup(self, visit: Visit, kind: str, text: str, days: int) -> None:
        fu = OpenFollowUp(kind, text, visit.day + days, visit.practitioner)
        self.open.append(fu)
        visit.followups_new.append(fu)

    def _gp_glucose(self, visit: Visit, a1c: float, eps: list[Episode]) -> None:
        rng, person = self.rng, self.person
        if a1c < self.p["intensify_hba1c"]:
            return
        classes = {e.drug.treatment_class for e in eps}
        if (
            len(classes) >= 2
            and a1c >= self.p["insulin_hba1c"]
            and "endocrinology" not in self.referred
        ):
            self._refer(
                visit,
                "endocrinologist",
                "endocrinology",
                "poorly controlled type 2 diabetes despite two agents",
            )
            return
        if rng.random() > self.p["p_intensify"]:
            add = "empagliflozin 10 mg" if "sglt2_inhibitor" not in classes else "semaglutide"
            visit.hypothetical = f"If HbA1c remains above 58 mmol/mol, consider adding {add}."
            return
        met = next((e for e in eps if e.drug.treatment_class == "metformin"), None)
        if met is None and not any(
            e.drug.ingredient == "metformin" and e.end_kind == "stopped" for e in person.episodes
        ):
            self.change(visit, "start", None, "metformin_500", "HbA1c above target")
            return
        if met is not None and met.drug.key != "metformin_1000" and met.adverse is None:
            self.change(visit, "increase", met, "metformin_1000", "HbA1c above target")
            return
        bmi = visit.weight / (self.person.height_cm / 100) ** 2
        egfr = self._last_lab_value("egfr") or 60.0
        if "sglt2_inhibitor" not in classes and egfr >= self.p["sglt2_min_egfr"]:
            self.change(visit, "start", None, "empagliflozin_10", "HbA1c above target")
        elif "glp1_ra" not in classes and bmi >= self.p["glp1_min_bmi"]:
            self.change(visit, "start", None, "semaglutide_0.25", "HbA1c above target and weight")
        elif "sulfonylurea" not in classes and "insulin" not in classes:
            self.change(visit, "start", None, "glipizide_5", "HbA1c above target")

    def _last_lab_value(self, key: str) -> float | None:
        for v in reversed(self.visits):
            if key in v.labs:
                return v.labs[key]
        return None

    def _titrate(self, visit: Visit, a1c: float, eps: list[Episode]) -> None:
        for ep in eps:
            up = _step(ep.drug, 1)
            if up is None or ep.adverse is not None or visit.day - ep.start < 28:
                continue
            if ep.drug.treatment_class == "glp1_ra":
                self.change(visit, "increase", ep, up.key, "planned titration")
                return
            if ep.drug.treatment_class == "insulin" and a1c >= self.p["target_hba1c"]:
                self.change(visit, "increase", ep, up.key, "fasting glucose above target")
                return
            if ep.drug.treatment_class == "metformin" and a1c >= self.p["target_hba1c"]:
                self.change(visit, "increase", ep, up.key, "HbA1c above target")
                return

    def _endocrine(self, visit: Visit, a1c: float, eps: list[Episode]) -> None:
        classes = {e.drug.treatment_class for e in eps}
        if a1c < self.p["target_hba1c"]:
            return
        bmi = visit.weight / (self.person.height_cm / 100) ** 2
        if "glp1_ra" not in classes and bmi >= 28 and self.rng.random() < 0.6:
            self.change(visit, "start", None, "semaglutide_0.25", "HbA1c above target and weight")
            self._followup(
                visit,
                "titration",
                "Diabetes nurse to titrate semaglutide to 0.5 mg after 4 weeks",
                35,
            )
        elif "insulin" not in classes:
            self.change(visit, "start", None, "insulin_glargine_10", "HbA1c above target")
            self._followup(
                visit,
                "titration",
                "Diabetes nurse to titrate insulin glargine by fasting glucose",
                28,
            )
        sglt2 = next((e for e in eps if e.drug.treatment_class == "sglt2_inhibitor"), None)
        if sglt2 is not None and self.rng.random() < self.p["p_sglt2_thrush"]:
            self.change(visit, "stop", sglt2, None, "recurrent genital thrush")
        su = next((e for e in eps if e.drug.treatment_class == "sulfonylurea"), None)
        if su is not None and any(
            c.new and c.new.drug.treatment_class == "insulin" for c in visit.changes
        ):
            self.change(visit, "stop", su, None, "risk of hypoglycaemia with insulin")

    def _lipids(self, visit: Visit) -> None:
        person, rng, day = self.person, self.rng, visit.day
        statins = person.on(day, ("statin",))
        age = person.age_at(self._date(day))
        cardio = visit.practitioner.role_key == "cardiologist"
        if not statins:
            if any(e.drug.treatment_class == "statin" and e.end == day for e in person.episodes):
                return
            eligible = (
                (self.dm_diagnosed and age >= self.p["statin_age_diabetes"])
                or person.ldl0 >= self.p["statin_ldl_severe"]
                or (self.htn_diagnosed and cardio)
            )
            if eligible and (cardio or rng.random() < 0.5):
                key = "atorvastatin_40" if cardio else "atorvastatin_20"
                self.change(visit, "start", None, key, "cardiovascular risk reduction")
                self._followup(visit, "lipids", "Repeat lipid profile in 3 months", 90)
            return
        ep = statins[0]
        ldl = visit.labs.get("ldl") or self._last_lab_value("ldl")
        if (
            cardio
            and ep.drug.statin_intensity == "moderate"
            and ep.adverse is None
            and ep.start < day
        ):
            up = _step(ep.drug, 1)
            if up is not None and (ldl is None or ldl > self.p["ldl_goal_high_risk"]):
                self.change(visit, "increase", ep, up.key, "high-intensity statin advised")
                self._followup(visit, "lipids", "Repeat lipid profile in 3 months", 90)

    def _routine_followups(self, visit: Visit) -> None:
        if (
            visit.kind == "consult"
            and visit.practitioner.role_key == "cardiologist"
            and self.rng.random() < 0.5
        ):
            self._followup(
                visit, "clinic", "Cardiology follow-up in 6 months; GP to continue titration", 180
            )

    # -- follow-ups -------------------------------------------------------------------------
    def _close_followups(self, visit: Visit) -> None:
        day, labs, rng = visit.day, visit.labs, self.rng
        still: list[OpenFollowUp] = []
        for fu in self.open:
            result: str | None = None
            if day < fu.due - 45 and fu.kind not in (
                "home_bp",
                "gp_bp",
                "gp_review",
                "cardio_review",
                "renal",
            ):
                still.append(fu)
                continue
            if fu.kind == "hba1c" and "hba1c" in labs:
                result = f"HbA1c {self._a1c_text(labs['hba1c'], visit)}"
            elif fu.kind == "lipids" and "ldl" in labs:
                result = f"LDL {self._fmt_lab('ldl', labs['ldl'], visit)}"
            elif fu.kind == "renal" and "egfr" in labs:
                result = f"eGFR {int(labs['egfr'])}, creatinine {self._fmt_lab('creatinine', labs['creatinine'], visit)}"
            elif fu.kind in ("bp_review", "gp_bp") and visit.practitioner.role_key in (
                "general_practitioner",
                "cardiologist",
            ):
                result = f"BP today {visit.sbp}/{visit.dbp} mmHg"
            elif (fu.kind == "gp_review" and visit.practitioner.is_doctor) or (
                fu.kind == "cardio_review" and visit.practitioner.role_key == "cardiologist"
            ):
                result = "discussed today"
            elif fu.kind == "home_bp":
                result = self._home_summary(visit) or "no home readings brought"
            elif fu.kind == "retinal" and day >= fu.due:
                r = rng.random()
                if r < self.p["p_screening_missed"]:
                    still.append(fu)
                    continue
                result = (
                    "screening done, no diabetic retinopathy"
                    if r < 1.0 - self.p["p_retinopathy_background"]
                    else "background retinopathy, annual recall"
                )
            elif fu.kind == "dpp" and day >= fu.due:
                result = f"attended {rng.randint(3, 9)} of 9 sessions"
            elif fu.kind in ("titration", "clinic") and day >= fu.due - 14:
                result = "done"
            if result is None:
                still.append(fu)
            else:
                visit.followups_closed.append((fu, result))
        self.open = still

    def _home_summary(self, visit: Visit) -> str | None:
        prev_day = self.visits[-1].day if self.visits else -1
        window = [h for h in self.home if prev_day < h.day < visit.day]
        if not window:
            return None
        sbp = round(sum(h.sbp for h in window) / len(window))
        dbp = round(sum(h.dbp for h in window) / len(window))
        return f"home readings (n={len(window)}) average {sbp}/{dbp} mmHg"

    def _fmt_lab(self, key: str, value: float, visit: Visit) -> str:
        return fmt_lab(key, value, visit.si and key != "egfr")

    def _home_window(self, visit: Visit, next_day: int) -> None:
        person, rng, p = self.person, self.rng, self.p
        new_dx = any(f.kind == "home_bp" for f in visit.followups_new)
        changed = any(c.new and c.new.drug.treatment_class in BP_CLASSES for c in visit.changes)
        if not (
            new_dx
            or (
                person.home_monitoring
                and self.home_windows < 3
                and (changed or visit.bp_status == "above")
            )
        ):
            return
        # Readings stop before the next visit, and never run past today.
        end = min(next_day - 2, self.total_days - 1)
        begin = visit.day + (1 if new_dx else rng.randint(7, 14))
        if end - begin < 7:
            return
        self.home_windows += 1
        if not new_dx:
            fu = OpenFollowUp(
                "home_bp",
                "Home BP readings for the next few weeks; send them in",
                end,
                visit.practitioner,
            )
            self.open.append(fu)
            visit.followups_new.append(fu)
        days = np.arange(begin, end + 1)
        keep = (
            np.random.default_rng(rng.getrandbits(32)).random(days.size)
            < p["home_readings_per_week"] / 7
        )
        for d in days[keep].tolist():
            sbp, dbp = person.bp_true(d)
            self.home.append(
                HomeReading(
                    day=int(d),
                    minute=rng.randrange(6 * 60 + 30, 8 * 60 + 30),
                    sbp=round(sbp + p["home_sbp_offset"] + rng.gauss(0, p["home_sbp_within_sd"])),
                    dbp=round(dbp + p["home_dbp_offset"] + rng.gauss(0, p["home_dbp_within_sd"])),
                )
            )


# --------------------------------------------------------------------------------------------
# Units


#: Canonical unit of every measured quantity, and its SI alternative (with the factor from
#: canonical to SI) where the cohort uses one; factors come from ``parameters.csv``.
CANONICAL_UNITS: dict[str, str] = {
    "hba1c": "%",
    "glucose": "mg/dL",
    "total_chol": "mg/dL",
    "ldl": "mg/dL",
    "hdl": "mg/dL",
    "triglycerides": "mg/dL",
    "egfr": "mL/min/{1.73_m2}",
    "creatinine": "mg/dL",
    "uacr": "mg/g",
    "weight": "kg",
    "height": "cm",
    "bmi": "kg/m2",
}


def convert(key: str, value: float, si: bool) -> tuple[float, str]:
    """A result as reported: in canonical units, or in SI units when ``si``.

    Parameters
    ----------
    key : str
        Quantity name from ``CANONICAL_UNITS`` (e.g. "glucose", "hba1c", "weight").
    value : float
        Value in the canonical unit (``CANONICAL_UNITS[key]``).
    si : bool
        Report in the SI alternative (mmol/L, mmol/mol, umol/L, mg/mmol, [lb_av] for weight).

    Returns
    -------
    (float, str)
        The reported value, rounded as a laboratory would, and its UCUM unit code.
    """
    p = parameters()
    unit = CANONICAL_UNITS[key]
    if not si:
        return value, unit
    if key == "glucose":
        return round(value / p["mgdl_per_mmol_glucose"], 1), "mmol/L"
    if key in ("total_chol", "ldl", "hdl"):
        return round(value / p["mgdl_per_mmol_cholesterol"], 1), "mmol/L"
    if key == "triglycerides":
        return round(value / p["mgdl_per_mmol_triglyceride"], 1), "mmol/L"
    if key == "hba1c":
        return float(round((value - p["ifcc_intercept"]) / p["ifcc_slope"])), "mmol/mol"
    if key == "creatinine":
        return float(round(value * p["umol_per_mg_creatinine"])), "umol/L"
    if key == "uacr":
        return round(value * p["mgmmol_per_mgg_uacr"], 1), "mg/mmol"
    if key == "weight":
        return round(value * p["lb_per_kg"], 1), "[lb_av]"
    return value, unit


def fmt_lab(key: str, value: float, si: bool) -> str:
    """A result as a note quotes it, in the same unit as the structured record."""
    v, unit = convert(key, value, si)
    sep = "" if unit == "%" else " "
    return f"{_fmt_number(v, unit, key)}{sep}{_display_unit(unit)}"


#: Decimal places a result is reported with, by unit (default: as stored).
DECIMALS: dict[str, int] = {
    "%": 1,
    "mmol/mol": 0,
    "mg/dL": 0,
    "mmol/L": 1,
    "umol/L": 0,
    "mL/min/{1.73_m2}": 0,
    "mg/g": 1,
    "mg/mmol": 1,
    "kg": 1,
    "[lb_av]": 1,
    "kg/m2": 1,
}


def _fmt_number(v: float, unit: str, key: str = "") -> str:
    places = 2 if key == "creatinine" and unit == "mg/dL" else DECIMALS.get(unit)
    if places is None:
        return f"{v:g}"
    return f"{v:.{places}f}"


def _display_unit(unit: str) -> str:
    return {"[lb_av]": "lb", "mL/min/{1.73_m2}": "mL/min/1.73m2", "mm[Hg]": "mmHg"}.get(unit, unit)


# --------------------------------------------------------------------------------------------
# FHIR resources

_LAB_ORDER = (
    "hba1c",
    "glucose",
    "total_chol",
    "ldl",
    "hdl",
    "triglycerides",
    "creatinine",
    "egfr",
    "uacr",
)

OBSERVATION_CODES: dict[str, tuple[str, str]] = {
    "bp": ("85354-9", "Blood pressure panel with all children optional"),
    "sbp": ("8480-6", "Systolic blood pressure"),
    "dbp": ("8462-4", "Diastolic blood pressure"),
    "weight": ("29463-7", "Body weight"),
    "height": ("8302-2", "Body height"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]"),
    "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
    "glucose": ("2339-0", "Glucose [Mass/volume] in Blood"),
    "total_chol": ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"),
    "ldl": ("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay"),
    "hdl": ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"),
    "triglycerides": ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"),
    "egfr": ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted"),
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
    "uacr": ("9318-7", "Albumin/Creatinine [Mass Ratio] in Urine"),
    "smoking": ("72166-2", "Tobacco smoking status"),
}

LAB_LABELS = {
    "hba1c": "HbA1c",
    "glucose": "fasting glucose",
    "total_chol": "total cholesterol",
    "ldl": "LDL",
    "hdl": "HDL",
    "triglycerides": "triglycerides",
    "creatinine": "creatinine",
    "egfr": "eGFR",
    "uacr": "urine ACR",
}

SMOKING_CODES = {
    "current": ("449868002", "Smokes tobacco daily (finding)"),
    "ex": ("8517006", "Ex-smoker (finding)"),
    "never": ("266919005", "Never smoked tobacco (finding)"),
}

CONDITIONS = {
    "htn": ("59621000", "Essential hypertension (disorder)", "hypertension"),
    "t2d": ("44054006", "Diabetes mellitus type 2 (disorder)", "type 2 diabetes"),
    "pre": ("714628002", "Prediabetes (finding)", "prediabetes"),
    "lipid": ("55822004", "Hyperlipidemia (disorder)", "hyperlipidaemia"),
    "obesity": ("162864005", "Body mass index 30+ - obesity (finding)", "obesity"),
    "ckd3": ("433144002", "Chronic kidney disease stage 3 (disorder)", "CKD stage 3"),
    "cough": ("49727002", "Cough (finding)", "cough"),
}

NOTE_TYPES: dict[NoteKind, tuple[str, str]] = {
    "hp": ("34117-2", "History and physical note"),
    "progress": ("11506-3", "Progress note"),
    "consult": ("11488-4", "Consult note"),
    "nurse": ("34745-0", "Nurse Note"),
    "dsn": ("34745-0", "Nurse Note"),
}

ENCOUNTER_TYPES: dict[NoteKind, tuple[str, str]] = {
    "hp": ("185349003", "Encounter for check up (procedure)"),
    "progress": ("390906007", "Follow-up encounter (procedure)"),
    "consult": ("11429006", "Consultation (procedure)"),
    "nurse": ("185349003", "Encounter for check up (procedure)"),
    "dsn": ("390906007", "Follow-up encounter (procedure)"),
}

ROUTES = {"oral": ("26643006", "Oral route"), "subcutaneous": ("34206005", "Subcutaneous route")}


def _ref(uid: str) -> Json:
    return {"reference": f"urn:uuid:{uid}"}


def _entry(resource: Json, **request: str) -> Json:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _cc(system: str, code: str, display: str, text: str | None = None) -> Json:
    return {
        "coding": [{"system": system, "code": code, "display": display}],
        "text": text or display,
    }


def _qty(value: float, unit: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


_CATEGORY = {
    name: [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": name,
                    "display": display,
                }
            ]
        }
    ]
    for name, display in (
        ("vital-signs", "Vital Signs"),
        ("laboratory", "Laboratory"),
        ("social-history", "Social History"),
    )
}


def practitioner_resources(pr: Practitioner) -> list[Json]:
    """Bundle entries (conditional creates) for one clinician and their role."""
    code, display, title = pr.role_code
    ident = {"system": PRACTITIONER_ID_SYSTEM, "value": pr.key}
    prac = {
        "resourceType": "Practitioner",
        "id": pr.id,
        "identifier": [ident],
        "active": True,
        "name": [
            {
                "family": pr.family,
                "given": [pr.given],
                **({"prefix": ["Dr"]} if pr.is_doctor else {}),
            }
        ],
        "gender": pr.gender,
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": pr.role_id,
        "identifier": [{"system": ROLE_SYSTEM, "value": pr.key}],
        "active": True,
        "practitioner": {**_ref(pr.id), "display": pr.display_name},
        "code": [
            {
                "coding": [
                    {"system": SNOMED, "code": code, "display": display},
                    {"system": ROLE_SYSTEM, "code": pr.role_key, "display": title},
                ],
                "text": title,
            }
        ],
    }
    return [
        _entry(prac, ifNoneExist=f"identifier={PRACTITIONER_ID_SYSTEM}|{pr.key}"),
        _entry(role, ifNoneExist=f"identifier={ROLE_SYSTEM}|{pr.key}"),
    ]


class _BundleWriter:
    """Turns one simulated record into FHIR resources."""

    def __init__(self, sim: _Simulation, index: int, seed: int, today: dt.date) -> None:
        self.sim = sim
        self.person = sim.person
        self.ids = sim.ids
        self.index = index
        self.seed = seed
        self.today = today
        self.patient_id = self.ids.next("patient")
        self.subject = _ref(self.patient_id)
        self.entries: list[Json] = []
        self.note_rng = random.Random(_seed_int(seed, index, "notes"))
        self.condition_ids: dict[str, str] = {}
        self._iso: dict[int, str] = {}

    def _when(self, day: int, minute: int) -> str:
        iso = self._iso.get(day)
        if iso is None:
            iso = self._iso[day] = self.sim._date(day).isoformat()
        return f"{iso}T{minute // 60:02d}:{minute % 60:02d}:00+00:00"

    def build(self) -> Json:
        names = _names()
        rng = random.Random(_seed_int(self.seed, self.index, "identity"))
        person = self.person
        given_pool = names["given_female" if person.sex == "female" else "given_male"]
        self.given = [rng.choice(given_pool)] + (
            [rng.choice(given_pool)] if rng.random() < 0.3 else []
        )
        self.family = rng.choice(names["family"])
        authors = sorted({v.practitioner for v in self.sim.visits}, key=lambda p: p.key)
        for pr in authors:
            self.entries.extend(practitioner_resources(pr))
        self.entries.append(_entry(self._patient(rng, names)))
        self._conditions()
        for visit in self.sim.visits:
            self._encounter(visit)
        for visit in self.sim.visits:
            self._visit_observations(visit)
        self._home_observations()
        self._medication_requests()
        for visit in self.sim.visits:
            self._note(visit)
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}

    def _patient(self, rng: random.Random, names: dict[str, tuple[str, ...]]) -> Json:
        mrn = f"TP{(self.index * 7919 + self.seed * 104729 + 1000003) % 10**7:07d}"
        street = f"{rng.randint(1, 180)} {rng.choice(names['street'])} {rng.choice(names['street_suffix'])}"
        postcode = f"TP{rng.randint(1, 29)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        return {
            "resourceType": "Patient",
            "id": self.patient_id,
            "meta": {"tag": [COHORT_TAG]},
            "identifier": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MR",
                                "display": "Medical Record Number",
                            }
                        ],
                        "text": "Medical Record Number",
                    },
                    "system": MRN_SYSTEM,
                    "value": mrn,
                }
            ],
            "active": True,
            "name": [{"use": "official", "family": self.family, "given": self.given}],
            "gender": self.person.sex,
            "birthDate": self.person.birth.isoformat(),
            "address": [
                {
                    "use": "home",
                    "line": [street],
                    "city": rng.choice(names["town"]),
                    "postalCode": postcode,
                    "country": "GB",
                }
            ],
        }

    # -- conditions ---------------------------------------------------------------------
    def _conditions(self) -> None:
        sim, person = self.sim, self.person
        visits = sim.visits
        found: list[tuple[str, int, int | None]] = []
        if person.has_htn and sim.htn_diagnosed:
            found.append(("htn", person.htn_onset, None))
        if person.has_dm and sim.dm_diagnosed:
            found.append(("t2d", person.dm_onset, None))
        if person.has_pre:
            a1cs = [(v.day, v.labs["hba1c"]) for v in visits if "hba1c" in v.labs]
            resolved = (
                a1cs[-1][0]
                if len(a1cs) >= 2
                and all(a < parameters()["prediabetes_hba1c"] for _, a in a1cs[-2:])
                else None
            )
            found.append(("pre", min(person.pre_onset, visits[0].day), resolved))
        statins = [e for e in person.episodes if e.drug.treatment_class == "statin"]
        if statins or person.ldl0 >= 160:
            found.append(("lipid", min([e.start for e in statins] + [visits[0].day]) - 30, None))
        bmis = [(v.day, v.weight / (person.height_cm / 100) ** 2) for v in visits]
        if bmis[0][1] >= parameters()["obesity_bmi"]:
            resolved = (
                bmis[-1][0] if len(bmis) >= 3 and all(b < 29.5 for _, b in bmis[-2:]) else None
            )
            found.append(("obesity", -rng_days(self.index, 400), resolved))
        low = [
            v.day for v in visits if "egfr" in v.labs and v.labs["egfr"] < parameters()["ckd3_egfr"]
        ]
        if len(low) >= 2 and low[-1] - low[0] >= 90:
            found.append(("ckd3", low[1] if low[1] - low[0] >= 90 else low[-1], None))
        # An adverse effect scheduled after the end of the record has not happened yet.
        if sim.cough_onset is not None and sim.cough_onset < sim.total_days:
            found.append(("cough", sim.cough_onset, sim.cough_resolved))
        for key, onset_day, abated in found:
            code, display, _ = CONDITIONS[key]
            cid = self.ids.next("condition")
            self.condition_ids[key] = cid
            active = abated is None or abated > sim.total_days
            res: Json = {
                "resourceType": "Condition",
                "id": cid,
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active" if active else "resolved",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                            }
                        ]
                    }
                ],
                "code": _cc(SNOMED, code, display),
                "subject": self.subject,
                "onsetDateTime": self._when(onset_day, 9 * 60),
                "recordedDate": self._when(max(onset_day, visits[0].day), 9 * 60),
            }
            if not active and abated is not None:
                res["abatementDateTime"] = self._when(abated, 9 * 60)
            self.entries.append(_entry(res))

    # -- encounters and observations ---------------------------------------------------------
    def _encounter(self, visit: Visit) -> None:
        code, display = ENCOUNTER_TYPES[visit.kind]
        length = 30 if visit.kind in ("hp", "consult") else 15
        res = {
            "resourceType": "Encounter",
            "id": visit.encounter_id,
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
                "display": "ambulatory",
            },
            "type": [_cc(SNOMED, code, display)],
            "subject": self.subject,
            "participant": [
                {
                    "individual": {
                        **_ref(visit.practitioner.id),
                        "display": visit.practitioner.display_name,
                    }
                }
            ],
            "period": {
                "start": self._when(visit.day, visit.minute),
                "end": self._when(visit.day, visit.minute + length),
            },
        }
        self.entries.append(_entry(res))

    def _obs(self, key: str, when: str, category: str, encounter: str | None, **value: Any) -> Json:
        code, display = OBSERVATION_CODES[key]
        res: Json = {
            "resourceType": "Observation",
            "id": self.ids.next("obs"),
            "status": "final",
            "category": _CATEGORY[category],
            "code": _cc(LOINC, code, display),
            "subject": self.subject,
            "effectiveDateTime": when,
            **value,
        }
        if encounter is not None:
            res["encounter"] = _ref(encounter)
        return res

    def _bp_obs(self, sbp: int, dbp: int, when: str, encounter: str | None, source: str) -> Json:
        res = self._obs(
            "bp",
            when,
            "vital-signs",
            encounter,
            component=[
                {
                    "code": _cc(LOINC, *OBSERVATION_CODES["sbp"]),
                    "valueQuantity": _qty(sbp, "mm[Hg]"),
                },
                {
                    "code": _cc(LOINC, *OBSERVATION_CODES["dbp"]),
                    "valueQuantity": _qty(dbp, "mm[Hg]"),
                },
            ],
        )
        res["meta"] = {"tag": [{"system": OBSERVATION_SOURCE_SYSTEM, "code": source}]}
        return res

    def _visit_observations(self, visit: Visit) -> None:
        when = self._when(visit.day, visit.minute + 5)
        enc = visit.encounter_id
        out = [self._bp_obs(visit.sbp, visit.dbp, when, enc, "clinic")]
        wv, wu = convert("weight", visit.weight, visit.weight_lb)
        out.append(self._obs("weight", when, "vital-signs", enc, valueQuantity=_qty(wv, wu)))
        if visit.height is not None:
            out.append(
                self._obs(
                    "height", when, "vital-signs", enc, valueQuantity=_qty(visit.height, "cm")
                )
            )
        bmi = round(visit.weight / (self.person.height_cm / 100) ** 2, 1)
        out.append(self._obs("bmi", when, "vital-signs", enc, valueQuantity=_qty(bmi, "kg/m2")))
        if visit.smoking is not None:
            code, display = SMOKING_CODES[visit.smoking]
            out.append(
                self._obs(
                    "smoking",
                    when,
                    "social-history",
                    enc,
                    valueCodeableConcept=_cc(SNOMED, code, display),
                )
            )
        lab_when = self._when(visit.day, visit.minute + 20)
        for key in _LAB_ORDER:
            if key in visit.labs:
                value, unit = convert(key, visit.labs[key], visit.si and key != "egfr")
                out.append(
                    self._obs(key, lab_when, "laboratory", enc, valueQuantity=_qty(value, unit))
                )
        self.entries.extend(_entry(r) for r in out)

    def _home_observations(self) -> None:
        for h in self.sim.home:
            res = self._bp_obs(h.sbp, h.dbp, self._when(h.day, h.minute), None, "home-device")
            res["performer"] = [self.subject]
            self.entries.append(_entry(res))

    # -- medication requests ------------------------------------------------------------------
    def _medication_requests(self) -> None:
        encounters = {v.no: v for v in self.sim.visits}
        for ep in self.person.episodes:
            drug = ep.drug
            visit = encounters.get(ep.visit)
            minute = visit.minute + 12 if visit else 10 * 60
            ended = ep.end is not None and ep.end <= self.sim.total_days
            status = "active" if not ended else (ep.end_kind or "stopped")
            bounds: Json = {"start": self._when(ep.start, minute)}
            if ended and ep.end is not None:
                end_minute = (
                    encounters[self._visit_no_at(ep.end)].minute + 12
                    if self._visit_no_at(ep.end) in encounters
                    else minute
                )
                bounds["end"] = self._when(ep.end, end_minute)
            route_code, route_display = ROUTES[drug.route]
            dose_unit = "U" if drug.dose_unit == "[IU]" else "mg"
            res: Json = {
                "resourceType": "MedicationRequest",
                "id": ep.id,
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": _cc(
                    RXNORM, drug.rxnorm, drug.display, f"{drug.ingredient} {drug.dose_text}"
                ),
                "subject": self.subject,
                "authoredOn": self._when(ep.start, minute),
                "requester": {**_ref(ep.requester.id), "display": ep.requester.display_name},
                "dosageInstruction": [
                    {
                        "sequence": 1,
                        "text": _sig(drug),
                        "timing": {
                            "repeat": {
                                "boundsPeriod": bounds,
                                "frequency": drug.frequency,
                                "period": 1,
                                "periodUnit": drug.period_unit,
                            }
                        },
                        "route": _cc(SNOMED, route_code, route_display),
                        "doseAndRate": [
                            {
                                "type": _cc(
                                    "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                    "ordered",
                                    "Ordered",
                                ),
                                "doseQuantity": {
                                    "value": drug.dose,
                                    "unit": dose_unit,
                                    "system": UCUM,
                                    "code": drug.dose_unit,
                                },
                            }
                        ],
                    }
                ],
            }
            if visit is not None:
                res["encounter"] = _ref(visit.encounter_id)
            if ep.prior is not None:
                res["priorPrescription"] = _ref(ep.prior.id)
            if status == "stopped" and ep.stop_reason:
                res["statusReason"] = {"text": ep.stop_reason}
            reason = _reason_key(drug.treatment_class)
            if reason in self.condition_ids:
                res["reasonReference"] = [_ref(self.condition_ids[reason])]
            self.entries.append(_entry(res))

    def _visit_no_at(self, day: int) -> int:
        for v in self.sim.visits:
            if v.day == day:
                return v.no
        return -1

    # -- notes ---------------------------------------------------------------------------
    def _note(self, visit: Visit) -> None:
        rng = self.note_rng
        ctx = self._note_context(visit, rng)
        text = write_note(ctx, rng)
        code, display = NOTE_TYPES[visit.kind]
        last = visit is self.sim.visits[-1]
        # The latest note is more often still a draft awaiting signature.
        draft = rng.random() < (0.25 if last else parameters()["p_note_draft"])
        when = self._when(visit.day, visit.minute + 25)
        res = {
            "resourceType": "DocumentReference",
            "id": self.ids.next("note"),
            "status": "current",
            "docStatus": "preliminary" if draft else "final",
            "type": _cc(LOINC, code, display),
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                            "code": "clinical-note",
                            "display": "Clinical Note",
                        }
                    ]
                }
            ],
            "subject": self.subject,
            "date": when,
            "author": [
                {**_ref(visit.practitioner.role_id), "display": visit.practitioner.display_name}
            ],
            "description": f"{display} by {visit.practitioner.display_name}",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "en",
                        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                        "title": f"{display} {self.sim._date(visit.day).isoformat()}",
                        "creation": when,
                    }
                }
            ],
            "context": {
                "encounter": [_ref(visit.encounter_id)],
                "period": {"start": self._when(visit.day, visit.minute), "end": when},
            },
        }
        self.entries.append(_entry(res))

    def _note_context(self, visit: Visit, rng: random.Random) -> NoteContext:
        sim, person = self.sim, self.person
        date = sim._date(visit.day)
        sbp_text = visit.sbp
        if rng.random() < parameters()["p_note_transcription_slip"]:
            # a wrong tens digit: 10 mmHg off stays within the summariser's tolerance, 20 does not
            sbp_text = visit.sbp + rng.choice((-20, -10, 10, 20))
        wv, wu = convert("weight", visit.weight, visit.weight_lb)
        bmi = round(visit.weight / (person.height_cm / 100) ** 2, 1)
        labs = [
            (LAB_LABELS[k], fmt_lab(k, visit.labs[k], visit.si and k != "egfr"))
            for k in _LAB_ORDER
            if k in visit.labs
        ]
        prior = self._prior_contacts(visit)
        stale, hidden = self._stale(visit, prior)
        problems = self._problems(visit)
        smoking_now = sim._smoking_status(visit.day)
        smoking = (
            "quit"
            if person.smoking == "current" and smoking_now == "ex" and self._quit_between(visit)
            else smoking_now
        )
        home = next((r for fu, r in visit.followups_closed if fu.kind == "home_bp"), None)
        closed = [
            ClosedFollowUp(self._closure_label(fu, rng), r)
            for fu, r in visit.followups_closed
            if fu.kind != "home_bp"
        ]
        referred_by = referral_reason = None
        if visit.kind == "consult":
            referrer = next((v for v in reversed(sim.visits[: visit.no]) if v.referral), None)
            if referrer is not None and referrer.referral is not None:
                referred_by = referrer.practitioner.short_name
                referral_reason = referrer.referral[1]
        return NoteContext(
            kind=visit.kind,
            author=visit.practitioner.display_name,
            author_role=visit.practitioner.role_key,
            date=date,
            patient_name=" ".join([self.given[0], self.family]),
            sex=person.sex,
            age=person.age_at(date),
            problems=problems,
            current_meds=[e.drug.line() for e in visit.active if e.id not in hidden],
            changes=[_med_change(c) for c in visit.changes],
            bp=f"{sbp_text}/{visit.dbp} mmHg",
            weight=f"{_fmt_number(wv, wu)} {_display_unit(wu)}",
            bmi=f"{bmi:.1f} kg/m2",
            labs=labs,
            stale_meds=[e.drug.line() for e in stale],
            prior=prior,
            home_bp=f"Home BP: {home}." if home else None,
            smoking=smoking,
            family_history=list(person.family_history) if visit.kind in ("hp", "consult") else [],
            findings=visit.findings,
            followups_new=[FollowUp(f.kind, f.text, sim._date(f.due)) for f in visit.followups_new],
            followups_closed=closed,
            hypothetical=visit.hypothetical,
            referral=visit.referral,
            referred_by=referred_by,
            referral_reason=referral_reason,
            bp_status=visit.bp_status,
            glucose_status=visit.glucose_status,
        )

    def _closure_label(self, fu: OpenFollowUp, rng: random.Random) -> str:
        """How a later note refers back to a follow-up when it is completed."""
        set_day = next(v.day for v in self.sim.visits if any(f is fu for f in v.followups_new))
        when = self.sim._date(set_day).isoformat()
        template = CLOSURE_LABELS.get(fu.kind, "{text} (from {date})")
        return template.format(text=fu.text, date=when)

    def _quit_between(self, visit: Visit) -> bool:
        prev = self.sim.visits[visit.no - 1].day if visit.no > 0 else -1
        return prev < self.person.quit_day <= visit.day

    def _prior_contacts(self, visit: Visit) -> list[PriorContact]:
        out: list[PriorContact] = []
        role = visit.practitioner.role_key
        for v in reversed(self.sim.visits[: visit.no]):
            if v.practitioner.role_key == role or visit.day - v.day > 240:
                break
            if v.changes or v.kind == "consult":
                out.append(
                    PriorContact(
                        v.practitioner.short_name,
                        v.practitioner.role_key,
                        self.sim._date(v.day),
                        tuple(_med_change(c) for c in v.changes),
                    )
                )
            if len(out) == 2:
                break
        return out

    def _stale(self, visit: Visit, prior: list[PriorContact]) -> tuple[list[Episode], set[str]]:
        """What a GP note gets wrong now and then about another clinician's changes.

        Returns drugs another clinician stopped that the note still lists, and the ids of
        re-dosed drugs whose old dose the note lists instead of the new one.
        """
        if visit.practitioner.role_key != "general_practitioner" or not prior:
            return [], set()
        active = {e.drug.ingredient: e for e in visit.active}
        stale: list[Episode] = []
        hidden: set[str] = set()
        for v in reversed(self.sim.visits[: visit.no]):
            if v.practitioner.role_key == "general_practitioner":
                break
            for c in v.changes:
                if c.old is None or self.note_rng.random() >= 0.45:
                    continue
                current = active.get(c.old.drug.ingredient)
                if c.action in ("stop", "switch", "hold") and current is None:
                    stale.append(c.old)
                elif (
                    c.action in ("increase", "decrease")
                    and current is not None
                    and current is c.new
                ):
                    stale.append(c.old)
                    hidden.add(current.id)
        return stale, hidden

    def _problems(self, visit: Visit) -> list[str]:
        sim, person = self.sim, self.person
        out = []
        if person.has_htn and sim.htn_diagnosed and person.htn_onset <= visit.day:
            out.append("hypertension")
        if person.has_dm and sim.dm_diagnosed and person.dm_onset <= visit.day:
            out.append("type 2 diabetes")
        if person.has_pre:
            out.append("prediabetes")
        if any(
            e.drug.treatment_class == "statin" and e.start <= visit.day for e in person.episodes
        ):
            out.append("hyperlipidaemia")
        if visit.weight / (person.height_cm / 100) ** 2 >= parameters()["obesity_bmi"]:
            out.append("obesity")
        return out


CLOSURE_LABELS = {
    "hba1c": "HbA1c recheck (planned at the {date} review)",
    "lipids": "Repeat lipid profile (requested {date})",
    "renal": "U&E after the ACE inhibitor/ARB change of {date}",
    "retinal": "Retinal screening (referred {date})",
    "bp_review": "BP review as planned on {date}",
    "gp_bp": "Raised BP flagged at the nurse clinic on {date}",
    "dpp": "Diabetes prevention programme (referred {date})",
}


def rng_days(index: int, upper: int) -> int:
    """A stable pseudo-random day count in [1, upper] for back-dated onsets."""
    return 1 + (index * 2654435761) % upper


def _reason_key(treatment_class: str) -> str:
    if treatment_class in BP_CLASSES:
        return "htn"
    if treatment_class in GLUCOSE_CLASSES:
        return "t2d"
    return "lipid"


def _med_change(c: Change) -> MedChange:
    new = c.new.drug.line() if c.new is not None else None
    old = c.old.drug.line() if c.old is not None else None
    keep = ("stop", "switch", "decrease", "hold")
    reason = c.reason if c.action in keep or c.reason == "restart" else ""
    return MedChange(c.action, new, old, reason)


def _sig(drug: Drug) -> str:
    if drug.route == "subcutaneous":
        return f"Inject {drug.dose_text} subcutaneously {drug.frequency_text}"
    form = "capsule" if "Capsule" in drug.display else "tablet"
    return f"Take one {form} ({drug.dose_text}) by mouth {drug.frequency_text}"


# --------------------------------------------------------------------------------------------
# Public API


def _validate(index: int, years: float) -> None:
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if not 0.5 <= years <= 30:
        raise ValueError(f"years must be within [0.5, 30], got {years}")


def generate_patient(
    index: int, *, seed: int = 0, today: dt.date, years: float = 6.0
) -> dict[str, Any]:
    """One patient's record as a FHIR R4 ``transaction`` Bundle (a plain dict).

    Parameters
    ----------
    index : int
        Patient number within the cohort (>= 0); picks the MRN and, with ``seed``, every id.
    seed : int
        Cohort seed; the same (index, seed, today, years) always gives the same bundle.
    today : datetime.date
        The last day of the record.
    years : float
        Length of the record in years, within [0.5, 30].

    Returns
    -------
    dict
        Bundle with Practitioner/PractitionerRole (conditional creates), Patient, Condition,
        Encounter, Observation (clinic and home-device), MedicationRequest and DocumentReference
        entries; references are ``urn:uuid:`` full URLs.
    """
    _validate(index, years)
    total_days = int(years * 365.25)
    rng = random.Random(_seed_int(seed, index, "clinical"))
    person = _make_person(rng, today, total_days)
    start = today - dt.timedelta(days=total_days)
    sim = _Simulation(person, rng, _Ids(seed, index), total_days, start)
    sim.run()
    return _BundleWriter(sim, index, seed, today).build()


def generate_cohort(
    n: int, *, seed: int = 0, today: dt.date, years: float = 6.0, start: int = 0
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` bundles for indices ``start .. start + n - 1`` (lazily, one at a time)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for index in range(start, start + n):
        yield generate_patient(index, seed=seed, today=today, years=years)
