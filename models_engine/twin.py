"""A small facade over the twin: calibrate → forecast → compare plans → check drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models_engine.calibration import Calibration, calibrate
from models_engine.drift import DriftResult, surprise
from models_engine.forecast import Forecast, RiskFn, forecast
from models_engine.history import PatientHistory
from models_engine.treatments import PlanItem
from models_engine.whatif import PlanOutcome, PlanTuple, compare_plans


@dataclass(frozen=True)
class Twin:
    """One patient's calibrated twin; every method returns plain data."""

    calibration: Calibration
    seed: int = 0
    n_samples: int = 200
    risk_fn: RiskFn | None = None

    @classmethod
    def from_history(
        cls, history: PatientHistory, *, until: float = 0.0, seed: int = 0, n_samples: int = 200
    ) -> Twin:
        """Calibrate on readings up to day ``until`` (default the reference date)."""
        return cls(calibration=calibrate(history, until=until), seed=seed, n_samples=n_samples)

    def forecast(self, *, horizon_years: float = 10.0, plan: Sequence[PlanItem] = ()) -> Forecast:
        """Trajectories with bands, PREVENT along the way and event probabilities."""
        return forecast(
            self.calibration,
            horizon_years=horizon_years,
            n_samples=self.n_samples,
            plan=plan,
            seed=self.seed,
            risk_fn=self.risk_fn,
        )

    def compare(
        self, plans: Mapping[str, Sequence[PlanItem | PlanTuple]], *, horizon_years: float = 10.0
    ) -> dict[str, PlanOutcome]:
        """Current care and up to six plans on the same posterior draws."""
        return compare_plans(
            self.calibration,
            plans,
            horizon_years=horizon_years,
            n_samples=self.n_samples,
            seed=self.seed,
            risk_fn=self.risk_fn,
        )

    def drift(
        self, variable: str, t_day: float, value: float, *, within: Forecast | None = None
    ) -> DriftResult:
        """How surprising a new reading is under the current-care forecast."""
        fc = (
            within
            if within is not None
            else self.forecast(horizon_years=max(1.0, t_day / 365.25 + 0.1))
        )
        return surprise(fc, variable, t_day, value)
