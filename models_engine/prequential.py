"""Prequential weighing of the structural model against a local-level model, batched over patients.

For each patient and variable both models predict every training reading from the readings before
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
  curve: carrying the current level forward, with honest bands.

The sum of one-step Student-t log scores (readings after the first) gives each patient's log Bayes
factor. The prior probability of the structural model is estimated from the batch (empirical Bayes:
the mixing weight that maximises the batch's marginal likelihood), so a data source whose patients
do not follow the population curves moves the prior, and each patient's posterior weight is that
prior updated by their own scores. Only readings up to the calibration cut-off are used.
"""

from __future__ import annotations

import math

import numpy as np

from models_engine.history import FloatArray

#: Prior probability of the structural model when the batch is too small to estimate it: even odds
#: between the two models [assumption]; ``batch_prior`` replaces it with the batch's estimate.
DEFAULT_PRIOR = 0.5
#: Bounds of the batch prior: neither model is ever ruled out for a whole batch [assumption].
PRIOR_BOUNDS = (0.02, 0.98)
#: Fewer patients with scored readings than this and the batch keeps ``DEFAULT_PRIOR`` (as
#: ``calibration.MIN_EB_PATIENTS`` for noise and walk).
MIN_PRIOR_PATIENTS = 10
_DAYS_PER_YEAR = 365.25


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
    score_l = np.zeros(n_pat)
    # local level: starts at the first reading
    detreated = zs - response[:, None] * es
    lvl = detreated[:, 0].copy()
    lvl_var = rs[:, 0].copy()
    q = walk_var
    t_prev = ts[:, 0]
    first = us[:, 0]
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
        # local-level prediction of the same reading
        l_var_pred = lvl_var + q * (np.maximum(ts[:, j] - t_prev, 0.0) / _DAYS_PER_YEAR)
        l_s2 = l_var_pred + rs[:, j]
        l_resid = detreated[:, j] - lvl
        scored = on & (j > 0)
        score_s += np.where(scored, _t_log_density(resid, s2, dof), 0.0)
        score_l += np.where(scored, _t_log_density(l_resid, l_s2, dof), 0.0)
        if j > 0:
            l_gain = l_var_pred / l_s2
            lvl = np.where(on, lvl + l_gain * l_resid, lvl)
            lvl_var = np.where(on, (1.0 - l_gain) * l_var_pred, lvl_var)
        x = np.where(on[:, None], x_new, x)
        cov = np.where(on[:, None, None], c_new, cov)
        t_prev = np.where(on, ts[:, j], t_prev)
    lvl = np.where(first, lvl, np.nan)
    return score_s, score_l, lvl, lvl_var


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
