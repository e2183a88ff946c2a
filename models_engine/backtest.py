"""Backtest: calibrate on each patient's past, forecast the held-out last months, score.

For every patient the cut-off is ``holdout_days`` before their last reading. The twin sees only
readings up to the cut-off, like the two naive baselines it is compared with (last value carried
forward and the patient's own least-squares linear trend). Treatments are inputs, not outcomes: by
default the twin forecasts under the treatment record as prescribed (as when a clinician asks
"what if we start X"); with ``treatments_known=False`` it also loses treatment starts and stops
after the cut-off and assumes current care continues.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models_engine.calibration import calibrate_batch, plausible
from models_engine.forecast import Draws, exposures_under, simulate, validate_samples
from models_engine.history import FloatArray, PatientHistory, TreatmentExposure

#: Variables scored, as the records layer's ``backtest`` command reports them.
BACKTEST_VARIABLES: tuple[str, ...] = ("sbp", "dbp", "hba1c", "ldl", "weight")
#: Shortest training span (days) for the trend baseline to fit a slope; else it carries forward.
MIN_TREND_SPAN_DAYS = 30.0
#: Bootstrap resamples of the interval around the twin's gain over carry-forward.
BOOTSTRAP_RESAMPLES = 2000


#: Longest hold-out, days (ten years).
MAX_HOLDOUT_DAYS = 10 * 365.25


def validate_holdout(days: float) -> None:
    """Raise ``ValueError`` unless the hold-out is within 1 day and ten years."""
    if not (1.0 <= days <= MAX_HOLDOUT_DAYS):
        raise ValueError(f"holdout_days must be within 1-{MAX_HOLDOUT_DAYS:g}, got {days:g}")


def last_reading_time(history: PatientHistory) -> float:
    times = [
        float(s.t.max())
        for v, s in history.observations.items()
        if v in BACKTEST_VARIABLES and s.t.size
    ]
    return max(times) if times else math.nan


#: One variable's split at a cut-off: training times and values, held-out times and values.
Split = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def holdout_split(history: PatientHistory, cutoff: float) -> dict[str, Split]:
    """Per scored variable with readings on both sides of ``cutoff``: its training and held-out part.

    Only plausible readings (``calibration.plausible``) take part, on both sides: the twin leaves
    the others out of its fit, and a value such as an HbA1c below 4 % does not measure glycaemia,
    so it is neither a forecast target nor a baseline's last value.
    """
    tests: dict[str, Split] = {}
    for v in BACKTEST_VARIABLES:
        s = history.observations.get(v)
        if s is None:
            continue
        ok = plausible(v, s.y)
        train = (s.t <= cutoff) & ok
        test = (s.t > cutoff) & ok
        if train.any() and test.any():
            tests[v] = (s.t[train], s.y[train], s.t[test], s.y[test])
    return tests


def known_at(history: PatientHistory, cutoff: float) -> PatientHistory:
    """The history as it was known on day ``cutoff``: later treatment starts and stops removed."""
    kept = tuple(
        TreatmentExposure(
            e.treatment,
            e.start,
            e.stop if e.stop is not None and e.stop <= cutoff else None,
            e.dose,
            e.intensity,
        )
        for e in history.treatments
        if e.start <= cutoff
    )
    return dataclasses.replace(history, treatments=kept)


def trend_prediction(t: FloatArray, y: FloatArray, t_new: FloatArray) -> FloatArray:
    """The patient's own least-squares line through (t, y), evaluated at ``t_new``; LOCF if too short."""
    if t.size < 2 or float(t.max() - t.min()) < MIN_TREND_SPAN_DAYS:
        return np.full(t_new.shape, y[np.argmax(t)])
    slope, intercept = np.polyfit(t, y, 1)
    out: FloatArray = intercept + slope * t_new
    return out


def _score(err: list[FloatArray]) -> tuple[float, float]:
    e = np.concatenate(err) if err else np.empty(0)
    if e.size == 0:
        return math.nan, math.nan
    return float(np.mean(np.abs(e))), float(np.sqrt(np.mean(e**2)))


#: Relative size below which a sum of absolute errors is rounding residue rather than error.
_ROUNDING = 1e-9


def _patient_resamples(n_patients: int, resamples: int, seed: int) -> npt.NDArray[np.intp]:
    """Indices of ``resamples`` bootstrap samples of ``n_patients`` patients, with replacement."""
    return np.random.default_rng(seed).integers(0, n_patients, size=(resamples, n_patients))


def gain_interval(
    twin: Sequence[FloatArray],
    baseline: Sequence[FloatArray],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % interval of the twin's MAE gain over a baseline, ``1 − MAE_twin / MAE_baseline``.

    The baseline is carry-forward or the patient's own trend. Percentile bootstrap over patients
    (each entry holds one patient's errors; Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993, ch. 13), so readings of one patient stay together: with a few dozen
    held-out readings the interval shows how much of a measured gain is chance.
    """
    if not twin:
        return math.nan, math.nan
    abs_twin = np.array([np.abs(e).sum() for e in twin])
    abs_base = np.array([np.abs(e).sum() for e in baseline])
    pick = _patient_resamples(abs_twin.size, resamples, seed)
    den = abs_base[pick].sum(axis=1)
    # a resample whose baseline errors are all rounding residue (a straight line through
    # exactly linear readings) has no ratio: it is left out, not turned into a gain of -10^14
    ok = den > _ROUNDING * float(abs_base.max(initial=0.0))
    if not ok.any():
        return math.nan, math.nan
    gains = 1.0 - abs_twin[pick].sum(axis=1)[ok] / den[ok]
    lo, hi = np.quantile(gains, [0.025, 0.975])
    return float(lo), float(hi)


def coverage_interval(
    inside: Sequence[FloatArray], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95 % interval of the share of held-out readings inside the predictive band.

    Each entry holds one patient's readings, 1 inside and 0 outside. The same bootstrap over
    patients as ``gain_interval``: one patient's readings share one forecast, so they are inside
    or outside together far more often than independent readings would be, and a patient with
    many readings makes the pooled coverage uncertain however many readings there are in all.
    """
    if not inside:
        return math.nan, math.nan
    hits = np.array([float(np.sum(c)) for c in inside])
    sizes = np.array([c.size for c in inside], dtype=float)
    pick = _patient_resamples(hits.size, resamples, seed)
    share = hits[pick].sum(axis=1) / sizes[pick].sum(axis=1)
    lo, hi = np.quantile(share, [0.025, 0.975])
    return float(lo), float(hi)


@dataclasses.dataclass(frozen=True)
class PatientScore:
    """One patient's held-out readings of one variable: how many, and each forecast's MAE."""

    patient_id: str
    variable: str
    n: int
    mae_twin: float
    mae_locf: float
    mae_trend: float
    coverage80: float


def run_backtest(
    histories: Sequence[PatientHistory],
    *,
    holdout_days: float = 365.0,
    n_samples: int = 400,
    seed: int = 0,
    treatments_known: bool = True,
    empirical_bayes: bool = True,
    patient_scores: list[PatientScore] | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """Backtest the twin against carry-forward and linear-trend baselines.

    Parameters
    ----------
    histories : sequence of PatientHistory
    holdout_days : float
        Length of the held-out period at the end of each record, days.
    n_samples : int
        Posterior samples per patient.
    seed : int
        Seed of the common random numbers.
    treatments_known : bool
        Give the twin the treatment record after the cut-off (default) or only what was known then.
    empirical_bayes : bool
        Estimate noise and random-walk hyperparameters from the batch's training readings
        (default; see ``calibrate_batch``) or take priors.csv's values.
    patient_scores : list of PatientScore, optional
        When given, one :class:`PatientScore` per patient and scored variable is appended to it.

    Returns
    -------
    dict
        Per variable (``sbp``, ``dbp``, ``hba1c``, ``ldl``, ``weight``): ``n`` held-out readings,
        ``patients``, ``mae_twin``, ``mae_locf``, ``mae_trend``, ``rmse_twin``, ``rmse_locf``,
        ``rmse_trend``, ``coverage80``, ``coverage95`` (fractions), ``coverage80_low`` and
        ``coverage80_high`` (95 % bootstrap interval of ``coverage80``, see
        ``coverage_interval``), ``gain_low`` and ``gain_high``
        (95 % bootstrap interval of ``1 − mae_twin / mae_locf``, see ``gain_interval``),
        ``trend_gain_low`` and ``trend_gain_high`` (the same for ``1 − mae_twin / mae_trend``),
        ``patient_mae_twin``, ``patient_mae_locf`` and ``patient_mae_trend`` (the mean over
        patients of each patient's MAE: every patient counted once, however many readings they
        hold), ``patient_coverage80`` (likewise for the 80 % coverage) and
        ``largest_patient_share`` (the share of the held-out readings that belong to the
        patient with the most); NaN becomes ``None``.
    """
    validate_holdout(holdout_days)
    validate_samples(n_samples)
    usable: list[tuple[PatientHistory, float]] = []
    for h in histories:
        last = last_reading_time(h)
        if math.isfinite(last):
            cutoff = last - holdout_days
            usable.append((h if treatments_known else known_at(h, cutoff), cutoff))
    cals = calibrate_batch(
        [h for h, _ in usable], until=[c for _, c in usable], empirical_bayes=empirical_bayes
    )
    err: dict[str, dict[str, list[FloatArray]]] = {
        v: {"twin": [], "locf": [], "trend": []} for v in BACKTEST_VARIABLES
    }
    cover: dict[str, list[FloatArray]] = {v: [] for v in BACKTEST_VARIABLES}
    cover95: dict[str, list[FloatArray]] = {v: [] for v in BACKTEST_VARIABLES}
    patients: dict[str, int] = dict.fromkeys(BACKTEST_VARIABLES, 0)
    scores: list[PatientScore] = []
    for k, ((h, cutoff), cal) in enumerate(zip(usable, cals, strict=True)):
        tests = holdout_split(h, cutoff)
        if not tests:
            continue
        t_all = np.unique(np.concatenate([v[2] for v in tests.values()]))
        draws = Draws.make(n_samples, t_all.size, np.random.default_rng([seed, k]))
        sims = simulate(cal, t_all, exposures_under(cal, ()), draws)
        for v, (t_tr, y_tr, t_te, y_te) in tests.items():
            obs = sims[v][1][:, np.searchsorted(t_all, t_te)]
            q = np.quantile(obs, [0.5, 0.1, 0.9, 0.025, 0.975], axis=0)
            err[v]["twin"].append(q[0] - y_te)
            err[v]["locf"].append(y_tr[np.argmax(t_tr)] - y_te)
            err[v]["trend"].append(trend_prediction(t_tr, y_tr, t_te) - y_te)
            cover[v].append(((y_te >= q[1]) & (y_te <= q[2])).astype(float))
            cover95[v].append(((y_te >= q[3]) & (y_te <= q[4])).astype(float))
            patients[v] += 1
            own = {m: float(np.mean(np.abs(err[v][m][-1]))) for m in ("twin", "locf", "trend")}
            scores.append(
                PatientScore(
                    h.patient_id,
                    v,
                    int(y_te.size),
                    own["twin"],
                    own["locf"],
                    own["trend"],
                    float(np.mean(cover[v][-1])),
                )
            )
    report: dict[str, dict[str, float | int | None]] = {}
    for v in BACKTEST_VARIABLES:
        row: dict[str, float | int | None] = {
            "n": int(sum(e.size for e in err[v]["twin"])),
            "patients": patients[v],
        }
        for model in ("twin", "locf", "trend"):
            mae, rmse = _score(err[v][model])
            row[f"mae_{model}"] = mae
            row[f"rmse_{model}"] = rmse
        row["coverage80"] = float(np.mean(np.concatenate(cover[v]))) if cover[v] else math.nan
        row["coverage95"] = float(np.mean(np.concatenate(cover95[v]))) if cover95[v] else math.nan
        row["coverage80_low"], row["coverage80_high"] = coverage_interval(cover[v], seed=seed)
        row["gain_low"], row["gain_high"] = gain_interval(err[v]["twin"], err[v]["locf"], seed=seed)
        row["trend_gain_low"], row["trend_gain_high"] = gain_interval(
            err[v]["twin"], err[v]["trend"], seed=seed
        )
        # Each patient counted once: the pooled figures above weigh a patient by their number
        # of held-out readings, so one patient with many can decide them.
        own_v = [sc for sc in scores if sc.variable == v]
        for name in ("mae_twin", "mae_locf", "mae_trend", "coverage80"):
            each = [getattr(sc, name) for sc in own_v]
            row[f"patient_{name}"] = float(np.mean(each)) if each else math.nan
        sizes = [e.size for e in err[v]["twin"]]
        row["largest_patient_share"] = max(sizes) / sum(sizes) if sizes else math.nan
        report[v] = {
            k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in row.items()
        }
    if patient_scores is not None:
        patient_scores.extend(scores)
    return report
