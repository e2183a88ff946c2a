"""Backtest of the twin on generated patients: the same 12-month hold-out as the Synthea bench.

Run: ``.venv/bin/python -m bench.backtest_cohort [--n 200] [--seed 7]`` (writes its section of
docs/benchmarks.md). The patients come from the records layer's synthetic cohort generator, whose
latent model and noise are independent of the twin's priors, so this checks that the twin's gain
over carry-forward is not an artefact of the 22 Synthea bundles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench._report import write_section
from bench.backtest_synthea import DAYS_PER_MONTH, acceptance, table
from models_engine.backtest import run_backtest
from models_engine.history import PatientHistory

TODAY = dt.date(2026, 11, 28)


def cohort_histories(n: int, seed: int) -> list[PatientHistory]:
    """``n`` generated patients as PatientHistory objects."""
    from patients.cohort.generator import generate_cohort
    from patients.fhir.extract import history_from_bundle

    return [history_from_bundle(b) for b in generate_cohort(n, seed=seed, today=TODAY)]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout-months", type=float, default=12.0)
    args = parser.parse_args(argv)
    histories = cohort_histories(args.n, args.seed)
    holdout = args.holdout_months * DAYS_PER_MONTH
    t0 = time.perf_counter()
    eb = run_backtest(histories, holdout_days=holdout)
    elapsed = time.perf_counter() - t0
    fixed = run_backtest(histories, holdout_days=holdout, empirical_bayes=False)
    body = (
        f"""
{len(histories)} generated patients (`generate_cohort(seed={args.seed})`, six years of visits each),
the last {args.holdout_months:g} months held out; 400 posterior samples; treatment record as
prescribed. Backtest time {elapsed:.2f} s.

**Empirical-Bayes noise and random-walk variances** (default):

{table(eb)}

**Fixed priors.csv noise and random-walk variances** (`empirical_bayes=False`):

{table(fixed)}

Acceptance (empirical Bayes):

"""
        + "\n".join(f"* {line}" for line in acceptance(eb))
        + "\n\nAcceptance (fixed hyperparameters):\n\n"
        + "\n".join(f"* {line}" for line in acceptance(fixed))
        + "\n"
    )
    write_section("backtest_cohort", body)
    print(body)
    return body


if __name__ == "__main__":
    main()
