"""A twin snapshot: everything the clinician's pages show about one fit, computed for many patients at once.

One call (:func:`snapshot_batch`) calibrates a batch of patients, forecasts current care on a monthly
grid for ten years (bands of a new reading: median, 80 % and 95 %), evaluates PREVENT 10- and 30-year
risk at the current state with the inputs it used, and, when the record allows, scores the twin
against carrying the last value forward on the patient's own last year (a per-patient backtest).
Pure numpy: the records layer stores the result and decides when to recompute.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models_engine.backtest import Split, holdout_split, last_reading_time, trend_prediction
from models_engine.calibration import DAYS_PER_YEAR, Calibration, calibrate_batch
from models_engine.forecast import (
    BATCH_QUANTILES,
    FORECAST_VARIABLES,
    PREVENT_RANGES,
    BatchForecast,
    forecast_batch,
    prevent_inputs,
)
from models_engine.history import FloatArray, PatientHistory

#: Version of the engine's structure; bump it when a change alters results. The stored model version
#: also carries a digest of every data file (priors, catalogue, coefficients), so editing a table
#: makes every snapshot stale without anyone remembering to bump this.
ENGINE_VERSION = "1.3"
_DATA = Path(__file__).resolve().parent / "data"

#: Snapshot grid: monthly (a twelfth of a Julian year) for ten years.
SNAPSHOT_STEP_DAYS = DAYS_PER_YEAR / 12.0
SNAPSHOT_HORIZON_YEARS = 10.0
#: The per-patient backtest holds out the last year of readings, as ``manage.py backtest`` does.
BACKTEST_HOLDOUT_DAYS = 365.0
#: Samples for the snapshot bands (the 2.5th/97.5th percentiles of 200 samples are the 5th/196th).
SNAPSHOT_SAMPLES = 200
#: The backtest only needs the held-out year's medians.
BACKTEST_SAMPLES = 100
#: PREVENT outcomes kept in a snapshot.
RISK_OUTCOMES: tuple[str, ...] = ("total_cvd", "ascvd", "heart_failure", "chd", "stroke")
#: Inputs without which no PREVENT risk is given: a risk from population guesses for blood pressure
#: and cholesterol would look like a measurement to a reader.
RISK_REQUIRED_READINGS: tuple[tuple[str, ...], ...] = (("sbp",), ("total_chol", "ldl"))


@functools.cache
def model_version() -> str:
    """``ENGINE_VERSION`` plus a short digest of every file under ``models_engine/data``."""
    digest = hashlib.sha256()
    for path in sorted(_DATA.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(_DATA).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{ENGINE_VERSION}+{digest.hexdigest()[:10]}"


@dataclass(frozen=True)
class RiskThreshold:
    """A risk category boundary: ``outcome`` over ``horizon`` years at or above ``threshold``."""

    outcome: str
    horizon: int
    threshold: float
    label: str
    alert: bool
    source: str


@functools.cache
def risk_thresholds() -> tuple[RiskThreshold, ...]:
    """Category boundaries from ``data/risk_thresholds.csv`` (each row names its source), ascending."""
    with (_DATA / "risk_thresholds.csv").open(newline="", encoding="utf-8") as fh:
        rows = [
            RiskThreshold(
                outcome=r["outcome"],
                horizon=int(r["horizon_years"]),
                threshold=float(r["threshold"]),
                label=r["label"],
                alert=r["alert"] == "yes",
                source=r["source"],
            )
            for r in csv.DictReader(fh)
        ]
    return tuple(sorted(rows, key=lambda r: (r.outcome, r.horizon, r.threshold)))


@dataclass(frozen=True)
class RiskEstimate:
    """PREVENT at the current state: risks by outcome (proportions; None where not estimable)."""

    ten_year: dict[str, float | None]
    thirty_year: dict[str, float | None]
    inputs: dict[str, float]
    assumed: tuple[str, ...]
    model: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-able fields."""
        return {
            "ten_year": self.ten_year,
            "thirty_year": self.thirty_year,
            "inputs": self.inputs,
            "assumed": list(self.assumed),
            "model": self.model,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TwinSnapshot:
    """One patient's fit and what follows from it.

    ``bands[v]`` has shape (5, T): the quantiles ``BATCH_QUANTILES`` (median, 10th, 90th, 2.5th,
    97.5th percentile of a new reading) on ``t_years`` (years from the reference date).
    ``backtest`` maps a variable to ``n``, ``mae_twin``, ``mae_locf`` and ``mae_trend`` of the
    held-out year, or is empty when the record does not allow one.
    """

    patient_id: str
    t_years: FloatArray
    bands: dict[str, FloatArray]
    calibration: Calibration
    risk: RiskEstimate | None
    backtest: dict[str, dict[str, float | int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        """True when a variable had too few readings to personalise (``Calibration.fallback``)."""
        return self.calibration.fallback


def validate_bands(t_years: FloatArray, bands: FloatArray) -> None:
    """Raise ``ValueError`` unless ``bands`` is (5, T) for a strictly increasing ``t_years`` of T."""
    if t_years.ndim != 1 or bands.shape != (len(BATCH_QUANTILES), t_years.size):
        raise ValueError(
            f"bands must have shape ({len(BATCH_QUANTILES)}, {t_years.size}), got {bands.shape}"
        )
    if t_years.size > 1 and not np.all(np.diff(t_years) > 0):
        raise ValueError("t_years must be strictly increasing")


def band_at(t_years: FloatArray, bands: FloatArray, when_years: FloatArray) -> FloatArray:
    """Bands interpolated at times ``when_years`` (years from the reference date), shape (5, N).

    Times outside the grid give NaN: a snapshot says nothing before its start or past its horizon.

    Parameters
    ----------
    t_years : (T,) array
    bands : (5, T) array, ``BATCH_QUANTILES`` order
    when_years : (N,) array
    """
    validate_bands(t_years, bands)
    w = np.asarray(when_years, dtype=np.float64)
    out = np.vstack([np.interp(w, t_years, row) for row in bands])
    outside = (w < t_years[0] - 1e-9) | (w > t_years[-1] + 1e-9)
    out[:, outside] = np.nan
    return out


def _risk_inputs_ok(cal: Calibration) -> bool:
    own = {v: f.n_obs for v, f in cal.fits.items()}
    ctx = cal.context
    for group in RISK_REQUIRED_READINGS:
        if not any(own.get(v, 0) > 0 or v in ctx for v in group):
            return False
    return True


def _risk_batch(
    cals: Sequence[Calibration], current: Sequence[Mapping[str, float]]
) -> list[RiskEstimate | None]:
    """PREVENT 10- and 30-year risks at each patient's current state, one vectorised call per group."""
    from models_engine.risk.prevent import MAX_AGE_30_YEAR, prevent

    out: list[RiskEstimate | None] = [None] * len(cals)
    prepared: dict[tuple[str, bool, bool], list[tuple[int, dict[str, float]]]] = {}
    for i, (cal, now) in enumerate(zip(cals, current, strict=True)):
        if not _risk_inputs_ok(cal):
            continue
        t = np.array([cal.until])
        traj = {v: np.array([now[v]]) for v in ("sbp", "ldl", "hba1c", "egfr", "weight")}
        raw = prevent_inputs(cal, cal.history.treatments, t, traj)
        if not np.isfinite(raw["age"]).all():
            continue
        inputs = {k: float(np.asarray(v).ravel()[0]) for k, v in raw.items()}
        if "uacr" in cal.context:
            inputs["uacr"] = float(np.clip(cal.context["uacr"], 0.1, 25000.0))
        key = (cal.history.sex, "bmi" in inputs, "uacr" in inputs)
        prepared.setdefault(key, []).append((i, inputs))
    for (sex, has_bmi, has_uacr), members in prepared.items():
        cols = {k: np.array([m[1][k] for m in members]) for k in members[0][1]}
        kw: dict[str, object] = {
            "age": cols["age"],
            "sex": sex,
            "sbp": cols["sbp"],
            "bp_treated": (cols["bp_treated"] > 0.5).astype(np.int64),
            "total_chol": cols["total_chol"],
            "hdl": cols["hdl"],
            "statin": (cols["statin"] > 0.5).astype(np.int64),
            "diabetes": (cols["diabetes"] > 0.5).astype(np.int64),
            "smoker": (cols["smoker"] > 0.5).astype(np.int64),
            "egfr": cols["egfr"],
            "hba1c": cols["hba1c"],
        }
        if has_bmi:
            kw["bmi"] = cols["bmi"]
        if has_uacr:
            kw["uacr"] = cols["uacr"]
        ten = prevent(**kw, horizon=10)  # type: ignore[arg-type]
        thirty = prevent(**kw, horizon=30)  # type: ignore[arg-type]
        for j, (i, inputs) in enumerate(members):
            cal = cals[i]
            assumed = _assumed_inputs(cal, has_bmi)
            clamped = [
                k for k, (lo, hi) in PREVENT_RANGES.items() if k in inputs and inputs[k] in (lo, hi)
            ]
            notes = []
            if not has_bmi:
                notes.append("heart failure not estimated: no height recorded for a BMI")
            if inputs["age"] > MAX_AGE_30_YEAR:
                notes.append(
                    f"30-year estimates above age {MAX_AGE_30_YEAR:g} are questionable "
                    "(PREVENT's 30-year models were derived at ages 30-59)"
                )
            if clamped:
                notes.append(
                    "inputs at the edge of PREVENT's validated range (clamped): "
                    + ", ".join(sorted(clamped))
                )
            out[i] = RiskEstimate(
                ten_year={o: _finite(np.asarray(ten[o])[j]) for o in RISK_OUTCOMES},
                thirty_year={o: _finite(np.asarray(thirty[o])[j]) for o in RISK_OUTCOMES},
                inputs={k: round(v, 4) for k, v in inputs.items()},
                assumed=assumed,
                model=ten.model,
                notes=tuple(notes),
            )
    return out


def _assumed_inputs(cal: Calibration, has_bmi: bool) -> tuple[str, ...]:
    """PREVENT inputs that come from population values rather than this patient's readings."""
    own = {v: f.n_obs for v, f in cal.fits.items()}
    ctx = cal.context
    assumed = [v for v in ("sbp", "hba1c", "egfr") if own.get(v, 0) == 0]
    if own.get("ldl", 0) == 0 and "total_chol" not in ctx:
        assumed.append("total_chol")
    if "hdl" not in ctx:
        assumed.append("hdl")
    if has_bmi and own.get("weight", 0) == 0:
        assumed.append("bmi")
    return tuple(assumed)


def _finite(x: object) -> float | None:
    v = float(np.asarray(x))
    return v if math.isfinite(v) else None


#: Patients forecast together: (patients, times, samples) arrays of this size stay in cache, which
#: is twice as fast as one call for a whole batch; the draws are the same in every block, so the
#: bands are identical to one call's.
FORECAST_BLOCK = 100


def _forecast_blocks(
    cals: Sequence[Calibration], *, horizon_years: float, n_samples: int, seed: int
) -> BatchForecast:
    parts = [
        forecast_batch(
            cals[k : k + FORECAST_BLOCK],
            horizon_years=horizon_years,
            n_samples=n_samples,
            step_days=SNAPSHOT_STEP_DAYS,
            seed=seed,
        )
        for k in range(0, max(len(cals), 1), FORECAST_BLOCK)
    ]
    return BatchForecast(
        patient_ids=tuple(p for part in parts for p in part.patient_ids),
        t_years=parts[0].t_years,
        bands={v: np.concatenate([part.bands[v] for part in parts]) for v in parts[0].bands},
    )


def _backtest_batch(
    histories: Sequence[PatientHistory], *, holdout_days: float, seed: int
) -> list[dict[str, dict[str, float | int]]]:
    """Each patient's own last-year backtest: twin median, carry-forward and own trend, MAE."""
    out: list[dict[str, dict[str, float | int]]] = [{} for _ in histories]
    usable: list[tuple[int, float, dict[str, Split]]] = []
    for i, h in enumerate(histories):
        last = last_reading_time(h)
        if not math.isfinite(last):
            continue
        cutoff = last - holdout_days
        tests = holdout_split(h, cutoff)
        if tests:
            usable.append((i, cutoff, tests))
    if not usable:
        return out
    cals = calibrate_batch([histories[i] for i, _, _ in usable], until=[c for _, c, _ in usable])
    horizon = min(30.0, (holdout_days + SNAPSHOT_STEP_DAYS) / DAYS_PER_YEAR)
    fc = _forecast_blocks(cals, horizon_years=horizon, n_samples=BACKTEST_SAMPLES, seed=seed)
    for k, (i, cutoff, tests) in enumerate(usable):
        for v, (t_tr, y_tr, t_te, y_te) in tests.items():
            median = np.interp((t_te - cutoff) / DAYS_PER_YEAR, fc.t_years, fc.bands[v][k, 0])
            out[i][v] = {
                "n": int(y_te.size),
                "mae_twin": float(np.mean(np.abs(median - y_te))),
                "mae_locf": float(np.mean(np.abs(y_tr[np.argmax(t_tr)] - y_te))),
                "mae_trend": float(np.mean(np.abs(trend_prediction(t_tr, y_tr, t_te) - y_te))),
            }
    return out


def snapshot_batch(
    histories: Sequence[PatientHistory],
    *,
    n_samples: int = SNAPSHOT_SAMPLES,
    seed: int = 0,
    with_backtest: bool | Sequence[bool] = True,
    holdout_days: float = BACKTEST_HOLDOUT_DAYS,
) -> list[TwinSnapshot]:
    """Calibrate, forecast, assess risk and backtest a batch of patients at their reference dates.

    Parameters
    ----------
    histories : sequence of PatientHistory
        Each with ``reference_date`` = the day of the fit (t = 0 is "now"); readings after it are
        ignored.
    n_samples : int
        Posterior samples per patient for the bands.
    seed : int
        Seed of the common random numbers (results are reproducible for the same inputs).
    with_backtest : bool or sequence of bool
        Also score each patient's own last year (about doubles the cost); one flag for all or
        one per history (a caller keeps a recent backtest instead of recomputing it nightly).
    holdout_days : float
        Length of that held-out year, days.

    Returns
    -------
    list of TwinSnapshot, in input order.
    """
    if not histories:
        return []
    cals = calibrate_batch(histories, until=0.0)
    fc = _forecast_blocks(
        cals,
        horizon_years=SNAPSHOT_HORIZON_YEARS,
        n_samples=n_samples,
        seed=seed,
    )
    current = [
        {v: float(fc.bands[v][i, 0, 0]) for v in FORECAST_VARIABLES} for i in range(len(cals))
    ]
    risks = _risk_batch(cals, current)
    wanted = [with_backtest] * len(histories) if isinstance(with_backtest, bool) else with_backtest
    if len(wanted) != len(histories):
        raise ValueError(
            f"with_backtest must be a bool or one per history, got {len(wanted)} for {len(histories)}"
        )
    picked = [i for i, w in enumerate(wanted) if w]
    backtests: list[dict[str, dict[str, float | int]]] = [{} for _ in histories]
    for i, result in zip(
        picked,
        _backtest_batch([histories[i] for i in picked], holdout_days=holdout_days, seed=seed),
        strict=True,
    ):
        backtests[i] = result
    snapshots: list[TwinSnapshot] = []
    for i, cal in enumerate(cals):
        notes = list(cal.notes)
        if risks[i] is None:
            if not _risk_inputs_ok(cal):
                notes.append(
                    "no PREVENT risk: it needs a recorded systolic blood pressure and cholesterol"
                )
            else:
                notes.append("no PREVENT risk: PREVENT is validated for ages 30-79")
        snapshots.append(
            TwinSnapshot(
                patient_id=cal.patient_id,
                t_years=fc.t_years,
                bands={v: fc.bands[v][i] for v in FORECAST_VARIABLES},
                calibration=cal,
                risk=risks[i],
                backtest=backtests[i],
                notes=tuple(notes),
            )
        )
    return snapshots
