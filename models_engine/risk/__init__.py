"""Published cardiovascular risk equations, vectorised over numpy arrays.

* :func:`prevent` — AHA PREVENT (Khan 2024), five outcomes, 10 or 30 years.
* :func:`pooled_cohort` — 2013 ACC/AHA Pooled Cohort Equations (Goff 2013), hard ASCVD, 10 years.
* :func:`framingham_2008` — Framingham general CVD (D'Agostino 2008), 10 years.
* :func:`score2` — SCORE2 (2021), region-calibrated, 10 years.

Scalar inputs give a :class:`RiskValue` (a ``float``) or, for PREVENT, a :class:`RiskDict` of floats;
array inputs give a :class:`RiskArray` (an ``ndarray``) or a :class:`RiskDict` of arrays. Every result
carries ``out_of_range`` (inputs outside the equation's validated range; the value is still computed),
``in_range`` and ``notes``. Impossible inputs raise ``ValueError`` naming the field.
"""

from models_engine.risk._validate import RangeFlag, RiskArray, RiskDict, RiskValue
from models_engine.risk.framingham import framingham_2008
from models_engine.risk.pooled_cohort import pooled_cohort
from models_engine.risk.prevent import prevent
from models_engine.risk.score2 import score2

__all__ = [
    "RangeFlag",
    "RiskArray",
    "RiskDict",
    "RiskValue",
    "framingham_2008",
    "pooled_cohort",
    "prevent",
    "score2",
]
