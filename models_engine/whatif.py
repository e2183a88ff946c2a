"""Compares treatment plans against current care on the same posterior draws.

Every plan is forecast on one set of common random numbers (``forecast.Draws``), so a difference
between plans is the plans' effect, not sampling noise. A plan's 10-year risk is the patient's
PREVENT 10-year total-CVD risk under current care (per posterior sample) times the relative risk
that trial meta-analyses attach to the plan's paired changes in LDL, SBP, HbA1c and smoking
(``relative_risk``); the absolute risk reduction is the difference from current care.
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
            "risk_10y": _finite_or_none(self.risk_10y),
            "arr_10y": [_finite_or_none(x) for x in self.arr_10y],
            "sources": self.sources,
            "forecast": self.forecast.to_dict(),
        }


def validate_plans(plans: Mapping[str, Sequence[object]]) -> None:
    """Raise ``ValueError`` for more than ``MAX_PLANS`` plans or a plan named like current care."""
    if len(plans) > MAX_PLANS:
        raise ValueError(f"plans must number at most {MAX_PLANS}, got {len(plans)}")
    if CURRENT_CARE in plans:
        raise ValueError(f"plan name {CURRENT_CARE!r} is reserved")


def _finite_or_none(x: float) -> float | None:
    return x if np.isfinite(x) else None


def _band(x: FloatArray) -> tuple[float, float, float]:
    q = np.quantile(x, [0.5, 0.1, 0.9])
    return float(q[0]), float(q[1]), float(q[2])


#: CTT Collaboration, Lancet 2010;376:1670: major vascular events, rate ratio per 1.0 mmol/L lower
#: LDL cholesterol (statin trials).
RR_PER_MMOL_LDL = 0.78
#: Ettehad D et al., Lancet 2016;387:957: major cardiovascular events, relative risk per 10 mmHg
#: lower SBP (BP-lowering trials).
RR_PER_10_MMHG_SBP = 0.80
#: Turnbull FM et al. (CONTROL), Diabetologia 2009;52:2288: major cardiovascular events HR 0.91 for
#: an HbA1c 0.88 % lower with intensive glucose control; expressed per 1 % HbA1c.
RR_PER_PERCENT_HBA1C = 0.91 ** (1.0 / 0.88)
#: Duncan MS et al., JAMA 2019;322:642: CVD hazard ratio 0.61 within 5 years of quitting vs
#: continuing to smoke; applied in proportion to the phased-in quit fraction.
HR_QUIT_SMOKING = 0.61
#: mg/dL of cholesterol per mmol/L (molar mass of cholesterol, 386.65 g/mol).
MG_DL_PER_MMOL = 38.67
#: Citations of the relative risks, listed with every plan's sources.
RISK_SOURCES: tuple[str, ...] = (
    "LDL: CTT Collaboration, Lancet 2010;376:1670 (RR 0.78 per mmol/L)",
    "SBP: Ettehad D et al., Lancet 2016;387:957 (RR 0.80 per 10 mmHg)",
    "HbA1c: Turnbull FM et al., Diabetologia 2009;52:2288 (HR 0.91 per 0.88 %)",
    "smoking: Duncan MS et al., JAMA 2019;322:642 (HR 0.61 after quitting)",
    "baseline risk: Khan SS et al. (PREVENT), Circulation 2024;149:430",
)


def _ten_year_means(fc: Forecast, m: int) -> dict[str, FloatArray]:
    """Per sample, each risk factor's mean true value over the first ten years, shape (m,)."""
    t = fc.t_days
    ten = (t - t[0]) <= 10.0 * DAYS_PER_YEAR + 1e-6
    return {v: fc.variables[v].true[:m, ten].mean(axis=1) for v in FIT_VARIABLES}


def baseline_risk(cal: Calibration, fc: Forecast, risk_fn: RiskFn, m: int) -> FloatArray:
    """10-year total-CVD PREVENT risk per sample under current care, at the start of the forecast."""
    t0 = fc.t_days[:1]
    start = {v: fc.variables[v].true[:m, 0] for v in FIT_VARIABLES}
    inputs = prevent_inputs(cal, exposures_under(cal, ()), t0, start)
    risk = prevent_risk(cal, inputs, risk_fn)
    out: FloatArray = risk.get("total_cvd", np.full(m, np.nan))
    return out


def _mean_smoker(cal: Calibration, plan: Plan, t: FloatArray) -> float:
    return float(smoker_fraction(cal, exposures_under(cal, plan), t).mean())


def relative_risk(
    cal: Calibration, plan_fc: Forecast, base_fc: Forecast, plan: Plan, m: int
) -> FloatArray:
    """Per sample, the plan's 10-year relative risk of major CVD events against current care.

    Risk equations such as PREVENT are associations, not effects (in older women PREVENT even
    gives lower cholesterol a higher risk), so the plan's benefit comes from the trial
    meta-analyses above, applied to the paired differences in 10-year mean LDL, SBP and HbA1c on
    the same draws, and to the phased-in quit fraction for smokers.
    """
    plan_means = _ten_year_means(plan_fc, m)
    base_means = _ten_year_means(base_fc, m)
    d_ldl = (plan_means["ldl"] - base_means["ldl"]) / MG_DL_PER_MMOL
    d_sbp = plan_means["sbp"] - base_means["sbp"]
    d_a1c = plan_means["hba1c"] - base_means["hba1c"]
    rr = RR_PER_MMOL_LDL ** (-d_ldl) * RR_PER_10_MMHG_SBP ** (-d_sbp / 10.0)
    rr = rr * RR_PER_PERCENT_HBA1C ** (-d_a1c)
    if cal.history.smoker:
        t = plan_fc.t_days
        ten = t[(t - t[0]) <= 10.0 * DAYS_PER_YEAR + 1e-6]
        quit_plan = 1.0 - _mean_smoker(cal, plan, ten)
        quit_base = 1.0 - _mean_smoker(cal, (), ten)
        rr = (
            rr
            * (1.0 - (1.0 - HR_QUIT_SMOKING) * quit_plan)
            / (1.0 - (1.0 - HR_QUIT_SMOKING) * quit_base)
        )
    out: FloatArray = rr
    return out


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
        course from its start), or drug classes stopped (``PlanItem(action="stop")``).
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
    m = min(RISK_SAMPLES, n_samples)
    base_fc: Forecast | None = None
    base_risk = np.full(m, np.nan)
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
        if base_fc is None:
            base_fc = fc
            if fn is not None:
                base_risk = baseline_risk(cal, fc, fn, m)
        risk = np.minimum(base_risk * relative_risk(cal, fc, base_fc, plan, m), 1.0)
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
            sources={
                **sources_for(
                    [p.intervention for p in plan],
                    stopped=[p.intervention for p in plan if p.stops],
                ),
                **({"risk": list(RISK_SOURCES)} if plan else {}),
            },
        )
    return outcomes
