"""The plain-data view of one patient that the twin is fitted to.

The records layer (``patients/``) builds these from the database or from FHIR bundles; the engine
never sees ORM objects. Times are days relative to ``reference_date`` (negative = in the past).
Every value is in the canonical unit of its variable (see ``VARIABLE_UNITS``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

Sex = Literal["female", "male"]

#: Canonical unit of every variable the twin reads (UCUM). The records layer converts on import.
VARIABLE_UNITS: dict[str, str] = {
    "sbp": "mm[Hg]",
    "dbp": "mm[Hg]",
    "hba1c": "%",
    "glucose": "mg/dL",
    "weight": "kg",
    "height": "cm",
    "bmi": "kg/m2",
    "total_chol": "mg/dL",
    "ldl": "mg/dL",
    "hdl": "mg/dL",
    "triglycerides": "mg/dL",
    "egfr": "mL/min/{1.73_m2}",
    "uacr": "mg/g",
}

#: Treatment classes the twin understands; ``patients.Medication.treatment_class`` uses the same keys.
TREATMENT_CLASSES: tuple[str, ...] = (
    "thiazide",
    "ace_inhibitor",
    "arb",
    "ccb",
    "beta_blocker",
    "loop_diuretic",
    "statin",
    "ezetimibe",
    "metformin",
    "sglt2_inhibitor",
    "glp1_ra",
    "sulfonylurea",
    "dpp4_inhibitor",
    "pioglitazone",
    "insulin",
)


@dataclass(frozen=True)
class Series:
    """Observations of one variable: ``t`` in days from the reference date, ``y`` in canonical units."""

    t: FloatArray
    y: FloatArray

    def __post_init__(self) -> None:
        if self.t.shape != self.y.shape or self.t.ndim != 1:
            raise ValueError(
                f"t and y must be 1-D arrays of equal length, got {self.t.shape} and {self.y.shape}"
            )


@dataclass(frozen=True)
class TreatmentExposure:
    """One period on one treatment class.

    ``dose`` is a multiple of the standard dose (1.0 standard, 0.5 half, 2.0 double). For statins
    ``intensity`` is "low", "moderate" or "high" (ACC/AHA 2018); for other classes it is ``None``.
    ``stop`` is ``None`` while the treatment continues.
    """

    treatment: str
    start: float
    stop: float | None = None
    dose: float = 1.0
    intensity: str | None = None


@dataclass(frozen=True)
class PatientHistory:
    """Everything the twin needs to know about one patient, as plain data."""

    patient_id: str
    sex: Sex
    birth_date: dt.date
    reference_date: dt.date
    observations: dict[str, Series] = field(default_factory=dict)
    treatments: tuple[TreatmentExposure, ...] = ()
    smoker: bool = False
    diabetes: bool = False
    race: str | None = None

    @property
    def age_years(self) -> float:
        """Age at the reference date, in years."""
        return (self.reference_date - self.birth_date).days / 365.25
