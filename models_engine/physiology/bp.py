"""Blood-pressure sub-model: the Herrgårdh 2022 age tracks, personalised, plus treatment effects.

Natural history (time = age in years) follows the hybrid model of Herrgårdh T et al., bioRxiv 2022,
doi:10.1101/2022.03.25.485803 (``bloodpressure_model.txt`` of github.com/willov/hybrid_app;
twin-model.md §1.2)::

    dSBP/dage = (k1_SBP + k2_SBP*age) * (IC_SBP - b_SBP) / (117.86 - b_SBP)
    dDBP/dage = (k1_DBP - k2_DBP*age) * (IC_DBP - b_DBP) / (75.8451 - b_DBP)

``IC`` is the track value at age 30. A patient's track is the one passing through their own reading,
which gives a personalised prior slope; the calibration then fits a patient-specific level and
slope around it. Drug effects (Law 2003), sodium (He 2013) and weight (Neter 2003) effects come from
the treatment catalogue with first-order onset; they enter the right-hand side as extra states.
"""

from __future__ import annotations

import numpy as np

from models_engine.history import FloatArray

#: Herrgårdh 2022 (hybrid_app ``bloodpressure_model.txt``): SBP rate at the reference track, mmHg/yr.
K1_SBP = 0.4081
#: Herrgårdh 2022: age-dependence of the SBP rate (zero in the published parameter set), mmHg/yr².
K2_SBP = 0.0
#: Herrgårdh 2022: SBP asymptote below which the age rise vanishes, mmHg.
B_SBP = 99.867
#: Herrgårdh 2022: reference SBP track value at age 30, mmHg.
REF_SBP = 117.86
#: Herrgårdh 2022: DBP rate at the reference track, mmHg/yr.
K1_DBP = 0.9262
#: Herrgårdh 2022: DBP rate decline with age, mmHg/yr² (DBP peaks at about 50.6 y).
K2_DBP = 0.0183
#: Herrgårdh 2022: DBP asymptote, mmHg.
B_DBP = 55.9788
#: Herrgårdh 2022: reference DBP track value at age 30, mmHg.
REF_DBP = 75.8451
#: Age at which the tracks are anchored, years.
AGE_ANCHOR = 30.0
#: Ages (years) over which the tracks were fitted: Herrgårdh 2022 fitted them to the Framingham
#: Heart Study trajectories of Franklin SS et al., Circulation 1997;96:308 (adults followed from
#: age 30 to about 80) [approximate]. Outside this range the curves are held at their end value
#: (no age drift): extrapolated, the DBP track becomes singular near age 101.5 and prescribes a
#: fall of DBP with age that nobody measured. ``validate_age`` accepts every adult age (18-110);
#: the curves are evaluated at ``curve_age``.
PUBLISHED_AGE_RANGE = (30.0, 80.0)


def validate_age(age: FloatArray | float) -> None:
    """Raise ``ValueError`` unless every age is within 18-110 years.

    Any adult age is accepted; the curves use it clamped to ``PUBLISHED_AGE_RANGE``.
    """
    a = np.asarray(age)
    if np.any((a < 18.0) | (a > 110.0)) or not np.all(np.isfinite(a)):
        raise ValueError(f"age must be within 18-110 years, got {a}")


def curve_age(age: FloatArray | float) -> FloatArray:
    """``age`` (years) clamped to ``PUBLISHED_AGE_RANGE``, where the published tracks hold."""
    out: FloatArray = np.clip(np.asarray(age, dtype=np.float64), *PUBLISHED_AGE_RANGE)
    return out


def _in_range(age: FloatArray | float) -> FloatArray:
    """1 inside ``PUBLISHED_AGE_RANGE``, 0 outside (the curves' age drift stops there)."""
    a = np.asarray(age, dtype=np.float64)
    out: FloatArray = ((a >= PUBLISHED_AGE_RANGE[0]) & (a <= PUBLISHED_AGE_RANGE[1])).astype(
        np.float64
    )
    return out


def _sbp_shape(age: FloatArray) -> FloatArray:
    a = curve_age(age)
    out: FloatArray = (K1_SBP * (a - AGE_ANCHOR) + 0.5 * K2_SBP * (a**2 - AGE_ANCHOR**2)) / (
        REF_SBP - B_SBP
    )
    return out


def _dbp_shape(age: FloatArray) -> FloatArray:
    a = curve_age(age)
    out: FloatArray = (K1_DBP * (a - AGE_ANCHOR) - 0.5 * K2_DBP * (a**2 - AGE_ANCHOR**2)) / (
        REF_DBP - B_DBP
    )
    return out


def rhs(age: float, y: FloatArray, ic_sbp: float, ic_dbp: float) -> FloatArray:
    """Untreated Herrgårdh right-hand side.

    Parameters
    ----------
    age : float
        Age in years (the model's time).
    y : ndarray, shape (2,)
        [SBP, DBP] in mmHg (unused: the published model depends on age only).
    ic_sbp, ic_dbp : float
        Track values at age 30, mmHg.

    Returns
    -------
    ndarray, shape (2,)
        d[SBP, DBP]/d(age) in mmHg/yr.
    """
    del y
    inside = float(_in_range(age))
    d_sbp = inside * (K1_SBP + K2_SBP * age) * (ic_sbp - B_SBP) / (REF_SBP - B_SBP)
    d_dbp = inside * (K1_DBP - K2_DBP * age) * (ic_dbp - B_DBP) / (REF_DBP - B_DBP)
    return np.array([d_sbp, d_dbp])


def track_from_reading(age: FloatArray | float, sbp: FloatArray | float) -> FloatArray:
    """The SBP track (value at age 30, mmHg) whose trajectory passes through ``sbp`` at ``age``.

    Parameters
    ----------
    age : array_like, shape (...)
        Years.
    sbp : array_like, shape (...)
        mmHg.

    Returns
    -------
    ndarray, shape (...)
        ``IC_SBP`` in mmHg (the closed-form inverse of the integrated right-hand side).
    """
    validate_age(age)
    c = _sbp_shape(np.asarray(age, dtype=np.float64))
    out: FloatArray = (np.asarray(sbp, dtype=np.float64) + c * B_SBP) / (1.0 + c)
    return out


def dbp_track_from_reading(age: FloatArray | float, dbp: FloatArray | float) -> FloatArray:
    """The DBP track (value at age 30, mmHg) passing through ``dbp`` at ``age``; shapes as SBP."""
    validate_age(age)
    c = _dbp_shape(np.asarray(age, dtype=np.float64))
    out: FloatArray = (np.asarray(dbp, dtype=np.float64) + c * B_DBP) / (1.0 + c)
    return out


def sbp_on_track(age: FloatArray | float, ic_sbp: FloatArray | float) -> FloatArray:
    """Untreated SBP (mmHg) at ``age`` (years) on the track ``ic_sbp``; broadcasts."""
    a = np.asarray(age, dtype=np.float64)
    ic = np.asarray(ic_sbp, dtype=np.float64)
    out: FloatArray = ic + (ic - B_SBP) * _sbp_shape(a)
    return out


def dbp_on_track(age: FloatArray | float, ic_dbp: FloatArray | float) -> FloatArray:
    """Untreated DBP (mmHg) at ``age`` (years) on the track ``ic_dbp``; broadcasts."""
    a = np.asarray(age, dtype=np.float64)
    ic = np.asarray(ic_dbp, dtype=np.float64)
    out: FloatArray = ic + (ic - B_DBP) * _dbp_shape(a)
    return out


def sbp_slope(age: FloatArray | float, sbp: FloatArray | float) -> FloatArray:
    """Personalised prior SBP slope (mmHg/yr) for a patient reading ``sbp`` at ``age``."""
    ic = track_from_reading(age, sbp)
    rate = _in_range(age) * (K1_SBP + K2_SBP * np.asarray(age))
    out: FloatArray = rate * (ic - B_SBP) / (REF_SBP - B_SBP)
    return out


def dbp_slope(age: FloatArray | float, dbp: FloatArray | float) -> FloatArray:
    """Personalised prior DBP slope (mmHg/yr) for a patient reading ``dbp`` at ``age``."""
    ic = dbp_track_from_reading(age, dbp)
    rate = _in_range(age) * (K1_DBP - K2_DBP * np.asarray(age))
    out: FloatArray = rate * (ic - B_DBP) / (REF_DBP - B_DBP)
    return out


def simulate(
    age0: float,
    sbp0: float,
    dbp0: float,
    years: float,
    *,
    effects_mmhg: FloatArray | None = None,
    taus_years: FloatArray | None = None,
    starts_years: FloatArray | None = None,
    step_years: float = 1.0 / 12.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Step the BP model forward with fixed steps (exponential integrator for the drug states).

    Parameters
    ----------
    age0 : float
        Age at the start, years.
    sbp0, dbp0 : float
        Untreated BP at ``age0``, mmHg (they fix the patient's tracks).
    years : float
        Horizon, years.
    effects_mmhg : ndarray, shape (k, 2), optional
        Steady-state [SBP, DBP] change of each of ``k`` treatments (negative lowers).
    taus_years : ndarray, shape (k,), optional
        Onset time constants, years.
    starts_years : ndarray, shape (k,), optional
        Start times after ``age0``, years.
    step_years : float
        Fixed step, years.

    Returns
    -------
    t : ndarray, shape (n,)
        Years from the start.
    sbp, dbp : ndarray, shape (n,)
        Treated BP, mmHg.
    """
    validate_age(age0)
    if years <= 0 or step_years <= 0:
        raise ValueError(f"years and step_years must be > 0, got {years}, {step_years}")
    ic_s = float(track_from_reading(age0, sbp0))
    ic_d = float(dbp_track_from_reading(age0, dbp0))
    k = 0 if effects_mmhg is None else effects_mmhg.shape[0]
    eff = np.zeros((k, 2)) if effects_mmhg is None else effects_mmhg
    tau = np.ones(k) if taus_years is None else taus_years
    start = np.zeros(k) if starts_years is None else starts_years
    n = int(np.ceil(years / step_years)) + 1
    t = np.linspace(0.0, years, n)
    h = t[1] - t[0]
    nat = np.array([sbp0, dbp0], dtype=np.float64)
    x = np.zeros((k, 2))
    sbp = np.empty(n)
    dbp = np.empty(n)
    decay = np.exp(-h / tau)[:, None]
    for i in range(n):
        sbp[i], dbp[i] = nat + x.sum(axis=0)
        if i == n - 1:
            break
        # the natural part is linear in age, so a midpoint step is exact
        nat = nat + h * rhs(age0 + t[i] + 0.5 * h, nat, ic_s, ic_d)
        on = (t[i] + h > start)[:, None]
        x = np.where(on, eff + (x - eff) * decay, x)
    return t, sbp, dbp
