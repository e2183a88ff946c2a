"""Compares treatment plans against current care on the same posterior draws.

Every plan is forecast on one set of common random numbers (``forecast.Draws``), so a difference
between plans is the plans' effect, not sampling noise. The 10-year PREVENT risk of a plan is
evaluated per sample at the plan's 10-year mean risk factors, with the current-care treatment flags
(``forecast.prevent_inputs``: PREVENT's treatment terms mark who is treated; they are not effects),
and the smoker weight phased as in ``forecast.smoker_fraction``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models_engine.calibration import DAYS_PER_YEAR, FIT_VARIABLES, Calibration
from models_engine.forecast import (
    Draws,
    Forecast,
    RiskFn,
    default_risk_fn,
    exposures_under,
    forecast,
    prevent_inputs,
    prevent_risk,
    smoker_fraction,
    time_grid,
)
from models_engine.history import FloatArray
from models_engine.physiology import glycaemia
from models_engine.treatments import PlanItem, sources_for

#: At most this many plans besides current care (a clinician compares a handful).
MAX_PLANS = 6
#: Samples used for the per-sample PREVENT evaluation.
RISK_SAMPLES = 200
CURRENT_CARE = "current care"

Plan = Sequence[PlanItem]
#: A plan step as plain data: (intervention, dose, start[, stop]) with days from the reference date.
PlanTuple = tuple[str, float, float] | tuple[str, float, float, float | None]


def plan_from(items: Sequence[PlanItem | PlanTuple]) -> tuple[PlanItem, ...]:
    """Plan items from ``PlanItem`` objects or ``(intervention, dose, start[, stop])`` tuples."""
    out: list[PlanItem] = []
    for item in items:
        if isinstance(item, PlanItem):
            out.append(item)
        elif len(item) == 3:
            out.append(PlanItem(item[0], dose=item[1], start=item[2]))
        else:
            out.append(PlanItem(item[0], dose=item[1], start=item[2], stop=item[3]))
    return tuple(out)


@dataclass(frozen=True)
class PlanOutcome:
    """Headline numbers of one plan; pairs are (median, 10th, 90th percentile) where noted."""

    name: str
    plan: tuple[PlanItem, ...]
    forecast: Forecast
    sbp_1y: tuple[float, float, float]
    hba1c_1y: tuple[float, float, float]
    hba1c_5y: tuple[float, float, float]
    years_to_diabetes: float
    diabetes_10y: float
    risk_10y: float
    arr_10y: tuple[float, float, float]
    sources: dict[str, list[str]]

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary (``inf`` years become ``None``)."""
        return {
            "name": self.name,
            "plan": [vars(p) for p in self.plan],
            "sbp_1y": list(self.sbp_1y),
            "hba1c_1y": list(self.hba1c_1y),
            "hba1c_5y": list(self.hba1c_5y),
            "years_to_diabetes": None
            if np.isinf(self.years_to_diabetes)
            else self.years_to_diabetes,
            "diabetes_10y": self.diabetes_10y,
            "risk_10y": self.risk_10y,
            "arr_10y": list(self.arr_10y),
            "sources": self.sources,
            "forecast": self.forecast.to_dict(),
        }


def validate_plans(plans: Mapping[str, Sequence[object]]) -> None:
    """Raise ``ValueError`` for more than ``MAX_PLANS`` plans or a plan named like current care."""
    if len(plans) > MAX_PLANS:
        raise ValueError(f"plans must number at most {MAX_PLANS}, got {len(plans)}")
    if CURRENT_CARE in plans:
        raise ValueError(f"plan name {CURRENT_CARE!r} is reserved")


def _band(x: FloatArray) -> tuple[float, float, float]:
    q = np.quantile(x, [0.5, 0.1, 0.9])
    return float(q[0]), float(q[1]), float(q[2])


def _risk_per_sample(cal: Calibration, fc: Forecast, plan: Plan, risk_fn: RiskFn) -> FloatArray:
    """10-year total-CVD PREVENT risk per sample at the plan's 10-year mean risk factors."""
    t = fc.t_days
    ten = (t - t[0]) <= 10.0 * DAYS_PER_YEAR + 1e-6
    m = min(RISK_SAMPLES, fc.variables["sbp"].true.shape[0])
    traj = {v: fc.variables[v].true[:m, ten].mean(axis=1) for v in FIT_VARIABLES}
    start = np.array([t[0]])
    inputs = prevent_inputs(cal, exposures_under(cal, plan, t[0]), start, traj)
    # time-averaged smoker weight, so a quit attempt counts as it phases in
    inputs["smoker"] = np.full(m, _mean_smoker(cal, plan, t[ten]))
    # diabetes status at start is a fixed marker; onset during the plan shows in mean HbA1c
    inputs["diabetes"] = np.full(m, float(cal.history.diabetes))
    risk = prevent_risk(cal, inputs, risk_fn)
    out: FloatArray = risk.get("total_cvd", np.full(m, np.nan))
    return out


def _mean_smoker(cal: Calibration, plan: Plan, t: FloatArray) -> float:
    return float(smoker_fraction(cal, exposures_under(cal, plan, t[0]), t).mean())


def compare_plans(
    cal: Calibration,
    plans: Mapping[str, Sequence[PlanItem | PlanTuple]],
    *,
    horizon_years: float = 10.0,
    n_samples: int = 200,
    step_days: float = 30.4375,
    seed: int = 0,
    risk_fn: RiskFn | None = None,
) -> dict[str, PlanOutcome]:
    """Forecast current care and up to six plans on the same draws.

    Parameters
    ----------
    cal : Calibration
    plans : mapping of name → sequence of PlanItem or (intervention, dose, start[, stop])
        Interventions added to current care (an item of a class already taken changes that
        course from its start).
    horizon_years, n_samples, step_days, seed
        As ``forecast.forecast``.
    risk_fn : callable, optional
        PREVENT implementation (default ``models_engine.risk.prevent``).

    Returns
    -------
    dict of name → PlanOutcome
        ``"current care"`` first, then the plans in order; ``arr_10y`` is current-care risk
        minus plan risk, per sample (positive = fewer events).
    """
    validate_plans(plans)
    parsed = {name: plan_from(items) for name, items in plans.items()}
    t0 = cal.until
    t = time_grid(t0, horizon_years, step_days)
    draws = Draws.make(n_samples, t.size, seed)
    fn = risk_fn if risk_fn is not None else default_risk_fn()
    all_plans: dict[str, Plan] = {CURRENT_CARE: (), **parsed}
    outcomes: dict[str, PlanOutcome] = {}
    base_risk: FloatArray | None = None
    for name, plan in all_plans.items():
        fc = forecast(
            cal,
            plan=plan,
            draws=draws,
            n_samples=n_samples,
            step_days=step_days,
            horizon_years=horizon_years,
            start=t0,
            with_risk=False,
        )
        years = fc.years
        i1 = int(np.searchsorted(years, 1.0 - 1e-9))
        i5 = min(int(np.searchsorted(years, 5.0 - 1e-9)), years.size - 1)
        hba1c = fc.variables["hba1c"].true
        first = glycaemia.years_to_threshold(years, hba1c)
        if cal.history.diabetes:
            first = np.zeros_like(first)
        risk = (
            _risk_per_sample(cal, fc, plan, fn)
            if fn is not None
            else np.full(min(RISK_SAMPLES, n_samples), np.nan)
        )
        if base_risk is None:
            base_risk = risk
        ten = years <= 10.0 + 1e-9
        outcomes[name] = PlanOutcome(
            name=name,
            plan=tuple(plan),
            forecast=fc,
            sbp_1y=_band(fc.variables["sbp"].true[:, i1]),
            hba1c_1y=_band(hba1c[:, i1]),
            hba1c_5y=_band(hba1c[:, i5]),
            years_to_diabetes=float(np.median(first)),
            diabetes_10y=float((first <= years[ten][-1]).mean()),
            risk_10y=float(np.nanmedian(risk)) if np.isfinite(risk).any() else float("nan"),
            arr_10y=_band(base_risk - risk)
            if np.isfinite(risk).any()
            else (np.nan, np.nan, np.nan),
            sources=sources_for([p.intervention for p in plan]),
        )
    return outcomes
