"""Prequential weighing of the structural model against two simple ones, batched over patients.

For each patient and variable each model predicts every training reading from the readings before
it (one step ahead, Dawid 1984, "Present position and potential developments: some personal views.
Statistical theory: the prequential approach", JRSS A 147:278), as Kalman filters over the
stacked patients (Harvey 1989, *Forecasting, structural time series models and the Kalman
filter*, ch. 3):

* the **structural** model: level and slope with the population priors of ``prior_for``, the
  response multiplier of the catalogue's treatment effects, the local linear trend of the fit and
  the patient's noise;
* the **local-level** model: a random walk plus noise of the readings with the treatment effects
  removed at the fitted response, with the same empirical-Bayes noise and walk (the variogram of
  ``calibration.estimate_noise_and_walk`` is this model's own), and no slope and no population
  curve: carrying the current level forward, with honest bands;
* the **steady-level** model: the same filter with no walk, so the level is the precision-weighted
  mean of all the patient's readings since their last level shift (the batch's shifts,
  ``estimate_shift``): a patient whose readings scatter around a level that does not move is
  forecast from all of them rather than from the newest few.

The sum of one-step Student-t log scores (readings after the first) is each model's prequential
marginal likelihood for the patient. The prior probabilities of the three models are estimated
from the batch (empirical Bayes: the mixing weights that maximise the batch's marginal likelihood,
``batch_mixing``), so a data source whose patients do not follow the population curves, or whose
levels do not wander, moves the prior; each patient's posterior weights are that prior updated by
their own scores (``posterior_weights``), so a patient with many readings is weighed by them and
one with few keeps the batch's weights, and the forecast is the mixture of the three models'
predictive distributions. Only readings up to the calibration cut-off are used.

A reading taken at the visit where a treatment for its variable was started (``index``: it
prompted the treatment) is one the clinician acted on: hypertension, for one, is treated once a
raised reading is confirmed (NICE NG136, 2019, recommendations 1.2.3-1.2.5; Whelton et al., 2017
ACC/AHA guideline, section 4), so the record's own decision backs it up. At such a reading the
local-level and steady-level models expect a lasting level shift with their own probability and
size, estimated from the batch (``estimate_index_shift``), so a newest reading that rose sharply
and prompted a drug moves the level instead of being taken for noise.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from models_engine.history import FloatArray

#: Prior probability of the structural model when the batch is too small to estimate it: even odds
#: between the two models [assumption]; ``batch_prior`` replaces it with the batch's estimate.
DEFAULT_PRIOR = 0.5
#: Bounds of the batch prior: neither model is ever ruled out for a whole batch [assumption].
PRIOR_BOUNDS = (0.02, 0.98)
#: Fewer patients with scored readings than this and the batch keeps ``DEFAULT_PRIOR`` (as
#: ``calibration.MIN_EB_PATIENTS`` for noise and walk).
MIN_PRIOR_PATIENTS = 10
#: Prior probabilities (structural, local level, steady level) when the batch is too small to
#: estimate them: ``DEFAULT_PRIOR`` for the structural model and the rest split evenly between the
#: two simple models [assumption]; ``batch_mixing`` replaces them with the batch's estimate.
DEFAULT_MIXING = (DEFAULT_PRIOR, 0.5 * (1.0 - DEFAULT_PRIOR), 0.5 * (1.0 - DEFAULT_PRIOR))
#: EM iterations of ``batch_mixing`` at most; it stops once the weights move by less than 1e-9
#: [assumption: a numerical tolerance, not a model value].
_EM_ITERATIONS = 300
_DAYS_PER_YEAR = 365.25
#: (probability, scale) pairs of the level shift at a reading that prompted a treatment for its
#: variable that ``estimate_index_shift`` chooses from: a shift with probability 10-90 % and an
#: SD of 2-8 measurement SDs (a grid, not a source's value: the batch picks) [assumption].
INDEX_SHIFT_GRID: tuple[tuple[float, float], ...] = tuple(
    (p, s) for p in (0.1, 0.25, 0.5, 0.75, 0.9) for s in (2.0, 4.0, 8.0)
)
#: The shift at a prompting reading when the batch has too few of them to estimate it: even odds
#: that the reading marks a lasting change, of the grid's middle size [assumption].
DEFAULT_INDEX_SHIFT = (0.5, 4.0)
_NO_SHIFT = np.float64(0.0)
#: (probability, scale) pairs of the local-level model's level shifts that ``estimate_shift``
#: chooses from: no shifts, or a shift between two readings with probability 2-20 % and an SD of
#: 2-8 measurement SDs (a grid, not a source's value: the batch picks) [assumption].
SHIFT_GRID: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    *((p, s) for p in (0.02, 0.05, 0.1, 0.2) for s in (2.0, 4.0, 8.0)),
)


def _t_log_density(resid: FloatArray, var: FloatArray, dof: float) -> FloatArray:
    """Student-t log density of ``resid`` with variance ``var`` (> 0) and ``dof`` > 2."""
    s2 = var * (dof - 2.0) / dof
    const = math.lgamma(0.5 * (dof + 1.0)) - math.lgamma(0.5 * dof) - 0.5 * math.log(dof * math.pi)
    out: FloatArray = const - 0.5 * np.log(s2) - 0.5 * (dof + 1.0) * np.log1p(resid**2 / (dof * s2))
    return out


def one_step_scores(
    t: FloatArray,
    z: FloatArray,
    effect: FloatArray,
    noise_var: FloatArray,
    use: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    response: FloatArray,
    *,
    walk_var: FloatArray,
    slope_walk_var: float,
    dof: float,
    final_state: list[FloatArray] | None = None,
    shift_prob: float = 0.0,
    shift_scale: float = 0.0,
    index: npt.NDArray[np.bool_] | None = None,
    index_shift: tuple[float, float] = DEFAULT_INDEX_SHIFT,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """One-step-ahead log scores of both models and the local level at each patient's last reading.

    Parameters
    ----------
    t : ndarray, shape (P, N)
        Days of the readings.
    z : ndarray, shape (P, N)
        Readings on the model scale, coupled effects removed.
    effect : ndarray, shape (P, N)
        Unscaled catalogue treatment effect at each reading (the response column of the fit).
    noise_var : ndarray, shape (P, N)
        Measurement variance of each reading (> 0 where ``use``).
    use : ndarray, shape (P, N)
        1 for the patient's own readings, 0 for padding and proxies.
    prior_mean, prior_sd : ndarray, shape (P, 3)
        Priors of level (at day 0), slope per year and response.
    response : ndarray, shape (P,)
        Fitted response multiplier: the local-level model sees the readings without the
        treatment effects at this response.
    walk_var : ndarray, shape (P,)
        Level random-walk variance per year (both models).
    slope_walk_var : float
        Slope diffusion per year (structural model).
    dof : float
        Student-t degrees of freedom of the scores (> 2).
    final_state : list, optional
        When given, the structural filter's last state mean (P, 3) and covariance (P, 3, 3) are
        appended to it.
    shift_prob, shift_scale : float
        Level shifts of the local-level model (``local_level_scores``).
    index : ndarray of bool, shape (P, N), optional
        Readings that prompted a treatment for the variable, and ``index_shift`` the local-level
        model's (probability, scale) of a shift there (``local_level_scores``).

    Returns
    -------
    structural, local : ndarray, shape (P,)
        Summed log scores of the readings after each patient's first.
    level_mean, level_var : ndarray, shape (P,)
        The local-level model's level (treatment effects removed) after the last reading.
    """
    n_pat, width = z.shape
    order = np.argsort(np.where(use > 0, t, np.inf), axis=1, kind="stable")

    def sort(a: FloatArray) -> FloatArray:
        out: FloatArray = np.take_along_axis(a, order, axis=1)
        return out

    ts, zs, es, rs, us = sort(t), sort(z), sort(effect), sort(noise_var), sort(use) > 0
    rs = np.where(us, rs, 1.0)
    t1 = ts[:, 0] / _DAYS_PER_YEAR
    # structural state (level now, slope, response), prior moved to the first reading's day
    x = np.stack(
        [prior_mean[:, 0] + prior_mean[:, 1] * t1, prior_mean[:, 1], prior_mean[:, 2]], axis=1
    )
    lift = np.zeros((n_pat, 3, 3))
    lift[:, [0, 1, 2], [0, 1, 2]] = 1.0
    lift[:, 0, 1] = t1
    cov = lift @ (prior_sd[:, :, None] ** 2 * np.eye(3)[None]) @ np.transpose(lift, (0, 2, 1))
    score_s = np.zeros(n_pat)
    q = walk_var
    t_prev = ts[:, 0]
    for j in range(width):
        on = us[:, j]
        if not on.any():
            break
        if j > 0:
            dt = np.where(on, (ts[:, j] - t_prev) / _DAYS_PER_YEAR, 0.0)
            dt = np.maximum(dt, 0.0)
            x_pred = x.copy()
            x_pred[:, 0] += x[:, 1] * dt
            f = np.zeros((n_pat, 3, 3))
            f[:, [0, 1, 2], [0, 1, 2]] = 1.0
            f[:, 0, 1] = dt
            c_pred = f @ cov @ np.transpose(f, (0, 2, 1))
            c_pred[:, 0, 0] += q * dt + slope_walk_var * dt**3 / 3.0
            c_pred[:, 0, 1] += slope_walk_var * dt**2 / 2.0
            c_pred[:, 1, 0] += slope_walk_var * dt**2 / 2.0
            c_pred[:, 1, 1] += slope_walk_var * dt
        else:
            x_pred, c_pred = x, cov
        h = np.stack([np.ones(n_pat), np.zeros(n_pat), es[:, j]], axis=1)
        mu = np.einsum("pi,pi->p", h, x_pred)
        ph = np.einsum("pij,pj->pi", c_pred, h)
        s2 = np.einsum("pi,pi->p", h, ph) + rs[:, j]
        resid = zs[:, j] - mu
        gain = ph / s2[:, None]
        x_new = x_pred + gain * resid[:, None]
        c_new = c_pred - gain[:, :, None] * ph[:, None, :]
        score_s += np.where(on & (j > 0), _t_log_density(resid, s2, dof), 0.0)
        x = np.where(on[:, None], x_new, x)
        cov = np.where(on[:, None, None], c_new, cov)
        t_prev = np.where(on, ts[:, j], t_prev)
    if final_state is not None:
        final_state.extend([x, cov])
    score_l, lvl, lvl_var = local_level_scores(
        ts,
        zs - response[:, None] * es,
        rs,
        us,
        walk_var=walk_var,
        shift_prob=shift_prob,
        shift_scale=shift_scale,
        dof=dof,
        index=None if index is None else np.take_along_axis(index, order, axis=1),
        index_shift=index_shift,
    )
    return score_s, score_l, lvl, lvl_var


def local_level_scores(
    t: FloatArray,
    z: FloatArray,
    noise_var: FloatArray,
    use: npt.NDArray[np.bool_],
    *,
    walk_var: FloatArray,
    shift_prob: float,
    shift_scale: float,
    dof: float,
    index: npt.NDArray[np.bool_] | None = None,
    index_shift: tuple[float, float] = DEFAULT_INDEX_SHIFT,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One-step log scores and final level of the local-level model with occasional level shifts.

    Between readings the level follows a random walk (variance ``walk_var`` per year) and, with
    probability ``shift_prob``, also shifts by a normal jump of SD ``shift_scale`` times the
    reading's measurement SD: a lasting change (a new diagnosis, a change of habits) that the
    newest readings show before any later one confirms it. The filter is the two-component
    Gaussian-sum filter collapsed by moment matching after each reading (Harrison & Stevens 1976,
    "Bayesian forecasting", JRSS B 38:205, the class II multi-process model), so a reading far from
    the level moves it most of the way instead of being discounted as noise.

    Parameters
    ----------
    t, z, noise_var : ndarray, shape (P, N)
        Days, readings (model scale, treatment effects removed) and measurement variances,
        each patient's readings in time order with ``use`` marking the real ones (a prefix).
    use : ndarray of bool, shape (P, N)
    walk_var : ndarray, shape (P,)
    shift_prob : float
        Probability of a shift between two readings, in [0, 1).
    shift_scale : float
        Shift SD over the measurement SD (>= 0).
    dof : float
        Student-t degrees of freedom of the scores (> 2).
    index : ndarray of bool, shape (P, N), optional
        Readings (in the same order) that prompted a treatment for the variable: before each of
        them the level may shift with the probability and scale ``index_shift`` instead of
        ``shift_prob`` and ``shift_scale``.

    Returns
    -------
    score : ndarray, shape (P,)
        Summed log scores of the readings after each patient's first.
    level, level_var : ndarray, shape (P,)
        The level after the last reading (NaN without readings) and its variance.
    """
    return _local_level_filter(
        t,
        z,
        noise_var,
        use,
        walk_var=walk_var,
        shift_prob=np.float64(shift_prob),
        shift_scale=np.float64(shift_scale),
        dof=dof,
        index=index,
        index_prob=np.float64(index_shift[0]),
        index_scale=np.float64(index_shift[1]),
    )


def _local_level_filter(
    t: FloatArray,
    z: FloatArray,
    noise_var: FloatArray,
    use: npt.NDArray[np.bool_],
    *,
    walk_var: FloatArray,
    shift_prob: FloatArray | np.float64,
    shift_scale: FloatArray | np.float64,
    dof: float,
    index: npt.NDArray[np.bool_] | None = None,
    index_prob: FloatArray | np.float64 = _NO_SHIFT,
    index_scale: FloatArray | np.float64 = _NO_SHIFT,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``local_level_scores`` for one (scalar) or several (shape (G, 1)) shift settings at once.

    With G settings every result gains a leading axis of G: the batch is filtered once for all of
    them (``estimate_shift``'s and ``estimate_index_shift``'s grids), which costs about one pass
    instead of G, since each step's arithmetic is small next to the cost of a numpy call.
    """
    n_pat, width = z.shape
    grid_shape = np.broadcast_shapes(
        np.shape(shift_prob),
        np.shape(shift_scale),
        np.shape(index_prob),
        np.shape(index_scale),
        (n_pat,),
    )
    lvl = z[:, 0].copy()
    lvl_var = noise_var[:, 0].copy()
    t_prev = t[:, 0].copy()
    score = np.zeros(grid_shape)
    log_stay = np.log1p(-shift_prob)
    log_shift = np.where(shift_prob > 0.0, np.log(np.maximum(shift_prob, 1e-300)), -np.inf)
    shifts = bool(np.any(shift_prob > 0.0))
    log_index_stay = np.log1p(-index_prob)
    log_index_shift = np.where(index_prob > 0.0, np.log(np.maximum(index_prob, 1e-300)), -np.inf)
    for j in range(1, width):
        on = use[:, j]
        if not on.any():
            break
        pred = lvl_var + walk_var * np.maximum(t[:, j] - t_prev, 0.0) / _DAYS_PER_YEAR
        r = noise_var[:, j]
        resid = z[:, j] - lvl
        s2_stay = pred + r
        l_stay: FloatArray | np.float64 = log_stay
        l_shift: FloatArray | np.float64 = log_shift
        scale_j: FloatArray | np.float64 = shift_scale
        shift_here = shifts
        if index is not None and index[:, j].any():
            # a reading that prompted a treatment: a shift with the prompting readings' odds
            here = index[:, j]
            l_stay = np.where(here, log_index_stay, log_stay)
            l_shift = np.where(here, log_index_shift, log_shift)
            scale_j = np.where(here, index_scale, shift_scale)
            shift_here = True
        ld_stay = l_stay + _t_log_density(resid, s2_stay, dof)
        mean_stay = lvl + pred / s2_stay * resid
        var_stay = pred * r / s2_stay
        if shift_here:
            pred_shift = pred + scale_j**2 * r
            s2_shift = pred_shift + r
            ld_shift = l_shift + _t_log_density(resid, s2_shift, dof)
            total = np.logaddexp(ld_stay, ld_shift)
            p_shift = np.exp(ld_shift - total)
            mean_shift = lvl + pred_shift / s2_shift * resid
            var_shift = pred_shift * r / s2_shift
            new = (1.0 - p_shift) * mean_stay + p_shift * mean_shift
            new_var = (1.0 - p_shift) * (var_stay + (mean_stay - new) ** 2) + p_shift * (
                var_shift + (mean_shift - new) ** 2
            )
        else:
            total, new, new_var = ld_stay, mean_stay, var_stay
        score += np.where(on, total, 0.0)
        lvl = np.where(on, new, lvl)
        lvl_var = np.where(on, new_var, lvl_var)
        t_prev = np.where(on, t[:, j], t_prev)
    lvl = np.broadcast_to(np.where(use[:, 0], lvl, np.nan), grid_shape).copy()
    return score, lvl, np.broadcast_to(lvl_var, grid_shape).copy()


def estimate_shift(
    t: FloatArray,
    z: FloatArray,
    noise_var: FloatArray,
    use: npt.NDArray[np.bool_],
    *,
    walk_var: FloatArray,
    dof: float,
    default: tuple[float, float],
    min_patients: int,
    index: npt.NDArray[np.bool_] | None = None,
    index_shift: tuple[float, float] = DEFAULT_INDEX_SHIFT,
) -> tuple[float, float]:
    """Empirical-Bayes shift probability and scale of the local-level model for a batch.

    The pair of ``SHIFT_GRID`` that maximises the batch's summed one-step log scores
    (``local_level_scores``): the prequential marginal likelihood of the local-level model, so
    a data source whose patients change level in steps gets shifts, and one whose readings scatter
    around a stable level gets few. Arrays as ``local_level_scores`` (each row in time order);
    ``default`` (probability, scale) when fewer than ``min_patients`` patients have two readings.
    Readings that prompted a treatment (``index``) keep their own shift, ``index_shift``.
    """
    if int(use[:, 1].sum()) < min_patients if use.shape[1] > 1 else True:
        return default
    grid = np.asarray(SHIFT_GRID)
    scores = _local_level_filter(
        t,
        z,
        noise_var,
        use,
        walk_var=walk_var,
        shift_prob=grid[:, :1],
        shift_scale=grid[:, 1:],
        dof=dof,
        index=index,
        index_prob=np.float64(index_shift[0]),
        index_scale=np.float64(index_shift[1]),
    )[0].sum(axis=1)
    return _best(scores, SHIFT_GRID, default)


def estimate_index_shift(
    t: FloatArray,
    z: FloatArray,
    noise_var: FloatArray,
    use: npt.NDArray[np.bool_],
    index: npt.NDArray[np.bool_],
    *,
    walk_var: FloatArray,
    dof: float,
    shift: tuple[float, float],
    min_patients: int,
) -> tuple[float, float]:
    """Empirical-Bayes shift at the readings that prompted a treatment, for a batch.

    The pair of ``INDEX_SHIFT_GRID`` that maximises the batch's summed one-step log scores of the
    local-level model, with the other readings' shifts at ``shift``: a data source whose
    prompting readings stand well above the patient's level, and stay there, gets likely and
    large shifts; one whose treatments start at unremarkable readings gets few. Arrays as
    ``local_level_scores``; ``DEFAULT_INDEX_SHIFT`` when fewer than ``min_patients`` patients
    have a prompting reading after their first.
    """
    scored = index & use
    scored[:, 0] = False
    rows = np.flatnonzero(scored.any(axis=1))
    if rows.size < min_patients:
        return DEFAULT_INDEX_SHIFT
    # the other patients' scores do not depend on the index shift: only these are filtered
    grid = np.asarray(INDEX_SHIFT_GRID)
    scores = _local_level_filter(
        t[rows],
        z[rows],
        noise_var[rows],
        use[rows],
        walk_var=walk_var[rows],
        shift_prob=np.float64(shift[0]),
        shift_scale=np.float64(shift[1]),
        dof=dof,
        index=index[rows],
        index_prob=grid[:, :1],
        index_scale=grid[:, 1:],
    )[0].sum(axis=1)
    return _best(scores, INDEX_SHIFT_GRID, DEFAULT_INDEX_SHIFT)


def _best(
    scores: FloatArray, grid: tuple[tuple[float, float], ...], default: tuple[float, float]
) -> tuple[float, float]:
    scores = np.where(np.isnan(scores), -np.inf, scores)
    if not np.isfinite(scores).any():
        return default
    # the first of equal scores, as a scan of the grid in order would keep
    prob, scale = grid[int(np.argmax(scores))]
    return prob, scale


def sort_rows(
    t: FloatArray, use: FloatArray, *arrays: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.bool_], tuple[FloatArray, ...]]:
    """Each patient's readings in time order, the ``use`` ones first; ``arrays`` reordered alike."""
    order = np.argsort(np.where(use > 0, t, np.inf), axis=1, kind="stable")
    used = np.take_along_axis(use, order, axis=1) > 0
    return (
        np.take_along_axis(t, order, axis=1),
        used,
        tuple(np.take_along_axis(a, order, axis=1) for a in arrays),
    )


def batch_prior(log_bayes: FloatArray, scored: FloatArray) -> float:
    """Empirical-Bayes prior probability of the structural model from the batch's log Bayes factors.

    The mixing weight ``π`` maximising ``Σ log(π·BF_i + 1 − π)`` over the patients with scored
    readings (a grid of 0.01 within ``PRIOR_BOUNDS``); ``DEFAULT_PRIOR`` with fewer than
    ``MIN_PRIOR_PATIENTS`` such patients.

    Parameters
    ----------
    log_bayes : ndarray, shape (P,)
        Structural minus local-level log score of each patient.
    scored : ndarray, shape (P,)
        True for patients with at least one scored reading.
    """
    lb = log_bayes[np.asarray(scored, dtype=bool)]
    if lb.size < MIN_PRIOR_PATIENTS:
        return DEFAULT_PRIOR
    grid = np.arange(PRIOR_BOUNDS[0], PRIOR_BOUNDS[1] + 1e-9, 0.01)
    ll = np.logaddexp(np.log(grid)[:, None] + lb[None, :], np.log1p(-grid)[:, None]).sum(axis=1)
    return float(grid[int(np.argmax(ll))])


def posterior_weight(log_bayes: FloatArray, prior: float) -> FloatArray:
    """Posterior probability of the structural model: ``prior`` updated by each log Bayes factor."""
    logit = math.log(prior / (1.0 - prior)) + np.clip(log_bayes, -700.0, 700.0)
    out: FloatArray = 1.0 / (1.0 + np.exp(-logit))
    return out


def slope_prior_scale(
    slope: FloatArray,
    slope_var: FloatArray,
    prior_mean: FloatArray,
    prior_sd: FloatArray,
    *,
    hyper_log_sd: float,
    min_patients: int,
) -> float:
    """Empirical-Bayes multiplier of the documented slope-prior SD from the batch's own slopes.

    ``slope`` and ``slope_var`` (shape (P,)) are each patient's slope estimate from their readings
    alone (nearly flat prior) and its variance; under the prior each estimate is
    ``N(prior_mean, (c·prior_sd)² + slope_var)``. ``c`` is the posterior mode with a log-normal
    hyperprior centred on 1 (log-SD ``hyper_log_sd``, as for noise and walk), on a grid of
    ``ln c`` within ±3 hyperprior SDs. A batch whose patients leave the population curve gets
    ``c > 1`` (the curve binds less), one whose patients follow it ``c < 1``. With fewer than
    ``min_patients`` usable estimates: 1.
    """
    ok = np.isfinite(slope) & np.isfinite(slope_var) & (slope_var > 0)
    if int(ok.sum()) < min_patients:
        return 1.0
    d2 = (slope[ok] - prior_mean[ok]) ** 2
    v = slope_var[ok]
    s2 = prior_sd[ok] ** 2
    u = np.linspace(-3.0 * hyper_log_sd, 3.0 * hyper_log_sd, 241)
    var = np.exp(2.0 * u)[:, None] * s2[None, :] + v[None, :]
    post = -0.5 * (np.log(var) + d2[None, :] / var).sum(axis=1) - 0.5 * u**2 / hyper_log_sd**2
    return float(np.exp(u[int(np.argmax(post))]))


def batch_mixing(log_scores: FloatArray, scored: FloatArray) -> FloatArray:
    """Empirical-Bayes prior probabilities of the models from the batch's prequential scores.

    The mixing weights ``π`` maximising ``Σ_i log Σ_k π_k exp(L_ik)`` over the patients with
    scored readings, by EM (Dempster, Laird & Rubin 1977, JRSS B 39:1, the finite-mixture
    weights), each kept within ``PRIOR_BOUNDS`` so no model is ruled out for a whole batch;
    ``DEFAULT_MIXING`` with fewer than ``MIN_PRIOR_PATIENTS`` such patients.

    Parameters
    ----------
    log_scores : ndarray, shape (P, K)
        Summed one-step log scores of each patient under each model (K = 3: structural, local
        level, steady level).
    scored : ndarray, shape (P,)
        True for patients with at least one scored reading.

    Returns
    -------
    ndarray, shape (K,)
    """
    ls = log_scores[np.asarray(scored, dtype=bool)]
    if ls.shape[0] < MIN_PRIOR_PATIENTS:
        return np.asarray(DEFAULT_MIXING, dtype=np.float64)
    ls = ls - ls.max(axis=1, keepdims=True)
    lik = np.exp(ls)
    pi = np.full(ls.shape[1], 1.0 / ls.shape[1])
    for _ in range(_EM_ITERATIONS):
        resp = pi * lik
        resp /= resp.sum(axis=1, keepdims=True)
        new = np.clip(resp.mean(axis=0), PRIOR_BOUNDS[0], PRIOR_BOUNDS[1])
        new /= new.sum()
        done = float(np.max(np.abs(new - pi))) < 1e-9
        pi = new
        if done:
            break
    out: FloatArray = pi
    return out


def posterior_weights(log_scores: FloatArray, prior: FloatArray) -> FloatArray:
    """Each patient's posterior model probabilities, shape (P, K): ``prior`` updated by the scores.

    Bayes' rule with each model's summed one-step log score as its log marginal likelihood: the
    more readings a patient has, the further their own scores move them from the batch's prior;
    a patient without scored readings keeps it.
    """
    logit = np.log(prior)[None, :] + log_scores
    logit -= logit.max(axis=1, keepdims=True)
    out: FloatArray = np.exp(logit)
    out /= out.sum(axis=1, keepdims=True)
    return out
