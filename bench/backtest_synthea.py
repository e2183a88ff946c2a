"""Backtest of the twin on the shared Synthea bundles: 12-month hold-out against naive baselines.

Run: ``.venv/bin/python -m bench.backtest_synthea [--holdout-months 12]`` (writes its section of
docs/benchmarks.md). Reads ../shared/data/synthea/*.json through the records layer's pure
``history_from_bundle``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench._report import write_section
from models_engine.backtest import BACKTEST_VARIABLES, PatientScore, run_backtest
from models_engine.history import PatientHistory

SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea"
#: The second tranche of 60 Synthea bundles (same source), read from its archive when present.
SYNTHEA_MORE = SYNTHEA.parent / "synthea-more.tar.gz"
#: Bundles of the second tranche (in name order) that join the 22 in the development half.
DEVELOPMENT_MORE = 20
DAYS_PER_MONTH = 30.4375


def synthea_histories(folder: Path = SYNTHEA) -> list[PatientHistory]:
    """Every bundle of ``folder`` as a PatientHistory."""
    from patients.fhir.extract import history_from_bundle

    return [
        history_from_bundle(json.loads(p.read_text(encoding="utf-8")))
        for p in sorted(folder.glob("*.json"))
    ]


def more_histories(archive: Path = SYNTHEA_MORE) -> list[PatientHistory]:
    """Every bundle of the second-tranche archive, in name order; empty when it is absent."""
    import tarfile

    from patients.fhir.extract import history_from_bundle

    if not archive.is_file():
        return []
    out = []
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")),
            key=lambda m: m.name,
        )
        for m in members:
            fh = tar.extractfile(m)
            if fh is not None:
                out.append(history_from_bundle(fh.read()))
    return out


def _fmt(x: float | int | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def _interval(row: dict[str, float | int | None], name: str, *, share: bool = False) -> str:
    """``row``'s ``<name>_low`` to ``<name>_high``: signed percentages, or with ``share`` the
    fractions as written ("0.75–0.93"); empty when missing."""
    lo, hi = row.get(f"{name}_low"), row.get(f"{name}_high")
    if lo is None or hi is None:
        return ""
    if share:
        return f"{float(lo):.2f}–{float(hi):.2f}"
    return f"{100 * float(lo):+.0f} to {100 * float(hi):+.0f} %"


def table(report: dict[str, dict[str, float | int | None]]) -> str:
    """Markdown table of a ``run_backtest`` report, with the twin's gain over carry-forward."""
    lines = [
        "| variable | n (patients) | MAE twin | MAE LOCF | MAE trend | gain vs LOCF (95 % CI) | RMSE twin | RMSE LOCF | RMSE trend | cover 80 % (95 % CI) | cover 95 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in BACKTEST_VARIABLES:
        r = report[v]
        twin, locf = r["mae_twin"], r["mae_locf"]
        gain = (
            f"{100 * (1 - float(twin) / float(locf)):+.0f} %" if twin is not None and locf else "–"
        )
        if _interval(r, "gain"):
            gain += f" ({_interval(r, 'gain')})"
        cover = _interval(r, "coverage80", share=True)
        cover = f" ({cover})" if cover else ""
        lines.append(
            f"| {v} | {r['n']} ({r['patients']}) | {_fmt(twin)} | {_fmt(locf)} | {_fmt(r['mae_trend'])} | {gain} | "
            f"{_fmt(r['rmse_twin'])} | {_fmt(r['rmse_locf'])} | {_fmt(r['rmse_trend'])} | "
            f"{_fmt(r['coverage80'])}{cover} | {_fmt(r['coverage95'])} |"
        )
    return "\n".join(lines)


def patient_table(report: dict[str, dict[str, float | int | None]]) -> str:
    """The same errors with every patient counted once, and how much one patient weighs."""
    lines = [
        "| variable | patients | mean of patients' MAE: twin | LOCF | trend | mean of patients' cover 80 % | one patient's share of the readings | gain vs trend (95 % CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in BACKTEST_VARIABLES:
        r = report[v]
        share = r.get("largest_patient_share")
        gain = _interval(r, "trend_gain") or "–"
        lines.append(
            f"| {v} | {r['patients']} | {_fmt(r.get('patient_mae_twin'))} | "
            f"{_fmt(r.get('patient_mae_locf'))} | {_fmt(r.get('patient_mae_trend'))} | "
            f"{_fmt(r.get('patient_coverage80'))} | "
            f"{'–' if share is None else f'{100 * float(share):.0f} %'} | {gain} |"
        )
    return "\n".join(lines)


def _pooled(scores: list[PatientScore], name: str) -> float:
    """The patients' ``name`` (a per-patient mean) pooled over their held-out readings."""
    return sum(sc.n * float(getattr(sc, name)) for sc in scores) / sum(sc.n for sc in scores)


def without_largest(scores: list[PatientScore]) -> str:
    """The pooled figures again without the patient who holds the most held-out readings of each
    variable: how much of a pooled figure that one patient decides."""
    lines = [
        "| variable | left out: readings (share) | n (patients) | MAE twin | MAE LOCF | MAE trend | cover 80 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in BACKTEST_VARIABLES:
        own = [sc for sc in scores if sc.variable == v]
        if len(own) < 2:
            continue
        largest = max(own, key=lambda sc: sc.n)
        rest = [sc for sc in own if sc is not largest]
        n = sum(sc.n for sc in rest)
        total = n + largest.n
        lines.append(
            f"| {v} | {largest.n} ({100 * largest.n / total:.0f} %) | {n} ({len(rest)}) | "
            f"{_pooled(rest, 'mae_twin'):.3g} | {_pooled(rest, 'mae_locf'):.3g} | "
            f"{_pooled(rest, 'mae_trend'):.3g} | {_pooled(rest, 'coverage80'):.2f} |"
        )
    return "\n".join(lines)


#: Per variable: the least MAE gain over carry-forward, and whether the twin must not be above
#: the trend baseline (the issue's acceptance criteria).
GOALS: dict[str, tuple[float, bool]] = {
    "sbp": (0.05, True),
    "dbp": (0.05, True),
    "hba1c": (0.0, True),
    "ldl": (0.0, False),
    "weight": (0.0, False),
}


def acceptance(report: dict[str, dict[str, float | int | None]]) -> list[str]:
    """The acceptance checks of the issue, each with its measured value."""
    out = []
    for v, (least, vs_trend) in GOALS.items():
        r = report[v]
        twin, locf, trend = r["mae_twin"], r["mae_locf"], r["mae_trend"]
        if twin is None or not locf:
            out.append(f"{v}: no held-out readings")
            continue
        gain = 1 - float(twin) / float(locf)
        ok = gain >= least
        out.append(
            f"{v} MAE {100 * gain:+.1f} % vs LOCF (goal ≥ {100 * least:+.0f} %): "
            f"{'met' if ok else 'NOT met'}"
        )
        if vs_trend and trend:
            below = float(twin) <= float(trend)
            interval = _interval(r, "trend_gain")
            interval = f"; gain over trend {interval} (95 % CI)" if interval else ""
            out.append(
                f"{v} MAE {float(twin):.3g} vs trend {float(trend):.3g} (goal: not above): "
                f"{'met' if below else 'NOT met'}{interval}"
            )
        c80 = r["coverage80"]
        ok = c80 is not None and 0.70 <= float(c80) <= 0.90
        interval = _interval(r, "coverage80", share=True)
        interval = f"; 95 % CI {interval}" if interval else ""
        out.append(
            f"{v} 80 % coverage {_fmt(c80)} (goal 0.70–0.90): {'met' if ok else 'NOT met'}{interval}"
        )
    return out


#: Seeds of the forecasts' random draws over which ``seed_spread`` repeats the backtest.
SPREAD_SEEDS = 12


def _over_seeds(
    runs: list[dict[str, dict[str, float | int | None]]], variable: str, name: str
) -> np.ndarray:
    """``name`` of ``variable`` in each run, NaN where a run has none."""
    return np.array([np.nan if r[variable][name] is None else r[variable][name] for r in runs])


def _spread(x: np.ndarray) -> str:
    """Mean ± SD and range of a figure over the seeds, as two table cells."""
    return f"{np.nanmean(x):.3f} ± {np.nanstd(x):.3f} | {np.nanmin(x):.3f}–{np.nanmax(x):.3f}"


def seed_spread(
    histories: list[PatientHistory], holdout: float, first: dict[str, dict[str, float | int | None]]
) -> str:
    """The twin's MAE and 80 % coverage with other seeds of the forecasts' draws: how much of a
    difference from a baseline, or of a coverage, is simulation error rather than forecasting
    (the calibration does not depend on the seed, so only the draws change). ``first`` is the
    report of seed 0, already run."""
    runs = [first] + [
        run_backtest(histories, holdout_days=holdout, seed=s) for s in range(1, SPREAD_SEEDS)
    ]
    lines = [
        f"The twin's MAE and 80 % coverage over seeds 0-{SPREAD_SEEDS - 1} of the forecasts' "
        "random draws (the "
        "tables above use seed 0), beside the baselines, which do not depend on the seed:",
        "",
        "| variable | MAE twin, mean ± SD over seeds | range | MAE LOCF | MAE trend | twin − trend, mean ± 2 SE | cover 80 %, mean ± SD over seeds | range |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in BACKTEST_VARIABLES:
        maes = _over_seeds(runs, v, "mae_twin")
        if np.isnan(maes).all():
            continue
        r0 = runs[0][v]
        trend = r0["mae_trend"]
        gap = (
            "–"
            if trend is None
            else f"{np.nanmean(maes) - float(trend):+.3f} ± "
            f"{2 * np.nanstd(maes, ddof=1) / np.sqrt(np.isfinite(maes).sum()):.3f}"
        )
        lines.append(
            f"| {v} | {_spread(maes)} | {_fmt(r0['mae_locf'], 3)} | {_fmt(trend, 3)} | {gap} | "
            f"{_spread(_over_seeds(runs, v, 'coverage80'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--holdout-months", type=float, default=12.0)
    args = parser.parse_args(argv)
    histories = synthea_histories()
    holdout = args.holdout_months * DAYS_PER_MONTH
    t0 = time.perf_counter()
    known = run_backtest(histories, holdout_days=holdout)
    elapsed = time.perf_counter() - t0
    unknown = run_backtest(histories, holdout_days=holdout, treatments_known=False)
    more = more_histories()
    everyone = ""
    if more:
        scores: list[PatientScore] = []
        report = run_backtest(histories + more, holdout_days=holdout, patient_scores=scores)
        everyone = (
            f"\n**All {len(histories) + len(more)} Synthea patients** (the {len(histories)} and the "
            f"{len(more)} of `synthea-more.tar.gz`, one batch; treatment record as prescribed; "
            "development and confirmation halves in docs/validation.md):\n\n"
            f"{table(report)}\n\n" + "\n".join(f"* {line}" for line in acceptance(report)) + "\n"
            "\nThe same errors with every patient counted once (the pooled figures above weigh "
            "a patient by their number of held-out readings):\n\n"
            f"{patient_table(report)}\n"
            "\nThe pooled figures without the patient who holds the most held-out readings of "
            "each variable (seed 0):\n\n"
            f"{without_largest(scores)}\n"
            f"\n{seed_spread(histories + more, holdout, report)}\n"
        )
    body = (
        f"""
{len(histories)} Synthea patients, the last {args.holdout_months:g} months of each record held out; the
twin is calibrated on everything before and forecasts with 400 posterior samples. LOCF = last
value carried forward; trend = the patient's own least-squares line. Errors in canonical units
(mmHg, %, mg/dL, kg); coverage = share of held-out readings inside the twin's 80 % / 95 %
predictive interval. Backtest time {elapsed:.2f} s. Priors were set from the literature, not fitted
to these patients.

**Treatment record as prescribed** (treatments are inputs; default of `run_backtest`):

{table(known)}

**Treatments started or stopped after the cut-off hidden from the twin** (`treatments_known=False`):

{table(unknown)}

Acceptance (treatment record as prescribed):

"""
        + "\n".join(f"* {line}" for line in acceptance(known))
        + "\n\nAcceptance (treatments hidden):\n\n"
        + "\n".join(f"* {line}" for line in acceptance(unknown))
        + "\n"
        + everyone
        + """

Caveats: a few dozen held-out readings per variable, so coverage and the gains are known only to
the bootstrap intervals shown (patients resampled, a patient's readings kept together). Many Synthea
HbA1c series are exactly constant for years (carry-forward's best case; each patient's own walk
and noise estimate keeps the twin within a few hundredths of it there), several carry
physiologically impossible values (2.4–3.0 %, outside the plausible range, so neither fitted nor
scored), and the rest scatter around a stable level by about ±0.2 % from year to year, which the
steady-level model forecasts from the mean of all the patient's readings where their own one-step
scores favour it. Synthea's vital signs do not respond to prescriptions; the batch's pooled
response learns that from the few patients with readings before and after a start. Of the 261
SBP readings held out from the 82, 138 belong to one patient (nine yearly readings before the
cut-off, drugs started after the last of them, then near-daily readings through the held-out
year that scatter less than his record did), so the all-patient BP figures are largely that
patient's: the table without him gives the other 81 patients' figures, and the seed table how
much of a pooled coverage is simulation error (400 samples per patient; one patient's 138
readings share one set of draws, so the pooled BP coverage moves by about a hundredth with the
seed). The generated-cohort backtest below (`backtest_cohort`), with hundreds of held-out
readings, is the better-powered check of the same code.
"""
    )
    write_section("backtest_synthea", body)
    print(body)
    return body


if __name__ == "__main__":
    main()
