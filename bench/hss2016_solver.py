"""Speed and accuracy of the vectorised HSS2016 driver against a loop of ``solve_ivp`` (LSODA).

Samples patient-like parameter sets around the published human parameters, simulates ten years
with :func:`models_engine.physiology.hss2016.simulate_batch` for 1,000 and 10,000 sets, and
compares with the naive approach: one ``solve_ivp(method="LSODA")`` call chain per parameter set
(``simulate(..., method="LSODA")``) at a tolerance chosen to give an error of the same order.
Errors of both are measured against the tight Radau reference (rtol 1e-8) on a subsample.

Run with ``python -m bench.hss2016_solver`` (a few minutes on two cores); ``--quick`` for a
smoke run that does not write the report.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from bench._report import write_section
from models_engine.physiology import hss2016

FloatArray = npt.NDArray[np.float64]

DAYS = 3650.0
PATH_TIMES = np.append(np.arange(5.0, DAYS, 10.0), DAYS)
LSODA_RTOL = 1e-4
LSODA_ATOL = 1e-6
FIELDS = ("G", "beta", "sigma")


def sample_params(n: int, seed: int = 2016) -> dict[str, FloatArray]:
    """Parameter sets spread around the published human values (all within the model's ranges)."""
    rng = np.random.default_rng(seed)
    return {
        "si_target": rng.uniform(0.12, 0.3, n),
        "si_rate": rng.uniform(0.004, 0.012, n),
        "r0": rng.uniform(780.0, 950.0, n),
        "tau_sigma": rng.uniform(200.0, 300.0, n),
        "beta0": rng.uniform(800.0, 1200.0, n),
        "si_scale": rng.uniform(0.8, 1.2, n),
        "t_si_switch": rng.uniform(200.0, 3000.0, n),
        "si_rate2": rng.uniform(0.005, 0.03, n),
        "si_target2": rng.uniform(0.2, 0.5, n),
    }


def _one(params: dict[str, FloatArray], j: int) -> dict[str, float]:
    return {k: float(v[j]) for k, v in params.items()}


def _rel_errors(
    got: dict[str, FloatArray], ref: dict[str, FloatArray]
) -> dict[str, tuple[float, float]]:
    """Per field: (max relative error at the end, max relative error along the path)."""
    out = {}
    for name in FIELDS:
        rel = np.abs(got[name] - ref[name]) / np.abs(ref[name])
        out[name] = (float(rel[-1].max()), float(rel.max()))
    return out


def _fmt_err(errs: dict[str, tuple[float, float]]) -> str:
    return " / ".join(f"{errs[n][0]:.1e}, {errs[n][1]:.1e}" for n in FIELDS)


def run(n_sizes: tuple[int, ...], n_loop: int, n_ref: int) -> str:
    params = sample_params(max(n_sizes))
    sub = {k: v[:n_ref] for k, v in params.items()}

    t0 = time.perf_counter()
    refs = [hss2016.simulate(DAYS, t_eval=PATH_TIMES, **_one(sub, j)) for j in range(n_ref)]
    t_radau = (time.perf_counter() - t0) / n_ref
    ref = {name: np.stack([getattr(r, name) for r in refs], axis=1) for name in FIELDS}
    diabetic = int(sum(r.G[-1] > hss2016.DIABETES_FPG_MG_DL for r in refs))

    t0, c0 = time.perf_counter(), time.process_time()
    loop = [
        hss2016.simulate(
            DAYS,
            t_eval=PATH_TIMES,
            method="LSODA",
            rtol=LSODA_RTOL,
            atol=LSODA_ATOL,
            **_one(params, j),
        )
        for j in range(n_loop)
    ]
    t_lsoda = (time.perf_counter() - t0) / n_loop
    c_lsoda = (time.process_time() - c0) / n_loop
    lsoda_err = _rel_errors(
        {name: np.stack([getattr(r, name) for r in loop[:n_ref]], axis=1) for name in FIELDS}, ref
    )

    rows = []
    errors = {}
    for dt in (1.0, 2.0):
        fast = hss2016.simulate_batch(DAYS, sub, dt=dt, t_out=PATH_TIMES)
        errors[dt] = _rel_errors({name: getattr(fast, name) for name in FIELDS}, ref)
        for n in n_sizes:
            batch = {k: v[:n] for k, v in params.items()}
            t0, c0 = time.perf_counter(), time.process_time()
            hss2016.simulate_batch(DAYS, batch, dt=dt, t_out=PATH_TIMES)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append(
                f"| {n:,} | {dt:g} | {wall:.2f} s / {cpu:.2f} s | {t_lsoda * n:,.0f} s / {c_lsoda * n:,.0f} s "
                f"| {t_lsoda * n / wall:,.0f}x / {c_lsoda * n / cpu:,.0f}x |"
            )

    lines = [
        f"Ten years ({DAYS:g} days) of the Ha-Satin-Sherman 2016 human model for parameter sets sampled "
        "around the published values (SI target and rates, R0, tau_sigma, beta0, a weight-driven SI "
        f"scale and an SI intervention at a random day); {diabetic} of the {n_ref} reference sets end "
        "diabetic (fasting G >= 126 mg/dl).",
        "",
        f'Baseline: a Python loop of `solve_ivp(method="LSODA")` per parameter set (rtol {LSODA_RTOL:g}, '
        f"atol {LSODA_ATOL:g}, piecewise between switch times), timed on {n_loop} sets: "
        f"{t_lsoda * 1e3:.0f} ms wall, {c_lsoda * 1e3:.0f} ms CPU per set; the totals below are that "
        "per-set time times N. Times are wall / process CPU: the machine is shared, and CPU time is "
        "the steadier comparison. "
        f"The tight reference (Radau, rtol 1e-8) took {t_radau * 1e3:.0f} ms per set.",
        "",
        "| N sets | dt (d) | vectorised driver (wall / CPU) | LSODA loop, per-set time x N (wall / CPU) | speed-up (wall / CPU) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Max relative error against the tight reference over {n_ref} sets, at 10 years / along the path "
        "(every 10 days), for G, beta, sigma:",
        "",
        "| method | G | beta | sigma |",
        "|---|---|---|---|",
        *(
            f"| vectorised, dt = {dt:g} d | "
            + " | ".join(f"{e[n][0]:.1e} / {e[n][1]:.1e}" for n in FIELDS)
            + " |"
            for dt, e in errors.items()
        ),
        f"| LSODA loop, rtol {LSODA_RTOL:g} | "
        + " | ".join(f"{lsoda_err[n][0]:.1e} / {lsoda_err[n][1]:.1e}" for n in FIELDS)
        + " |",
        "",
        "The vectorised driver's error is first order in dt; it is largest while secretory capacity "
        "collapses (glucotoxicity) and where an SI switch falls inside a step.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes; print, do not write the report"
    )
    args = parser.parse_args()
    if args.quick:
        print(run((100,), n_loop=5, n_ref=5))
        return
    body = run((1_000, 10_000), n_loop=100, n_ref=30)
    print(body)
    write_section("hss2016_solver", body)


if __name__ == "__main__":
    main()
