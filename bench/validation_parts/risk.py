"""Validation section for the risk equations: published worked examples vs computed values.

``section(outdir)`` returns markdown (a table of every worked example, a PREVENT-vs-SBP figure saved
into ``outdir`` and a throughput comparison with scalar calls). Run on its own with
``python -m bench.validation_parts.risk`` to write ``docs/benchmarks.md`` and ``docs/validation/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np

from models_engine.risk import framingham_2008, pooled_cohort, prevent, score2

FIGURE = "risk_prevent_total_cvd_vs_sbp.png"


@dataclass(frozen=True)
class Example:
    """One published figure: how it is printed (decimals of a proportion or a percent) and its source."""

    equation: str
    source: str
    inputs: str
    published: float
    compute: Callable[[], float]
    decimals: int
    percent: bool = False
    tolerance: float | None = (
        None  # absolute, in the printed unit, when the source rounds intermediates
    )


def _half_up(value: float, decimals: int) -> float:
    return float(
        Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    )


S25 = {
    "age": 50,
    "sbp": 160,
    "bp_treated": True,
    "total_chol": 200,
    "hdl": 45,
    "statin": False,
    "diabetes": True,
    "smoker": False,
    "egfr": 90,
    "bmi": 35,
}
S25_TEXT = "50 y, SBP 160 treated, TC 200, HDL 45, DM, non-smoker, eGFR 90, BMI 35"
TABLE_A = {
    "age": 55,
    "total_chol": 213,
    "hdl": 50,
    "sbp": 120,
    "bp_treated": False,
    "smoker": False,
    "diabetes": False,
}
SCORE2_T4 = {"age": 50, "smoker": True, "sbp": 140, "total_chol_mmol": 6.3, "hdl_mmol": 1.4}


def _prevent(sex: str, outcome: str, horizon: int = 10, **optional: float) -> Callable[[], float]:
    return lambda: float(prevent(sex=sex, horizon=horizon, **S25, **optional)[outcome])


def examples() -> list[Example]:
    """Every published figure the equations are checked against (the same ones as the tests)."""
    out = [
        Example(
            "PREVENT",
            "Khan 2024 Table S25",
            f"F {S25_TEXT}",
            0.147,
            _prevent("female", "total_cvd"),
            3,
        ),
    ]
    for sex, horizon, optional, outcome, value in [
        ("female", 30, {}, "total_cvd", 0.530),
        ("female", 10, {}, "heart_failure", 0.081),
        ("male", 10, {}, "total_cvd", 0.163),
        ("male", 30, {}, "stroke", 0.197),
        ("female", 10, {"hba1c": 9.2}, "total_cvd", 0.165),
        ("male", 10, {"uacr": 92.0}, "ascvd", 0.123),
        ("male", 30, {"hba1c": 9.2}, "heart_failure", 0.457),
    ]:
        extra = ", ".join(f"{k} {v:g}" for k, v in optional.items())
        out.append(
            Example(
                "PREVENT",
                "preventr tests",
                f"{sex[0].upper()} {S25_TEXT}{', ' + extra if extra else ''}; {outcome}, {horizon} y",
                value,
                _prevent(sex, outcome, horizon, **optional),
                3,
            )
        )
    for sex, race, pct, tol in [
        ("female", "white", 2.1, None),
        ("female", "black", 3.0, None),
        ("male", "white", 5.3, 0.1),
        ("male", "black", 6.1, None),
    ]:
        out.append(
            Example(
                "Pooled Cohort",
                "Goff 2013 Table A",
                f"{race} {sex}, 55 y, TC 213, HDL 50, SBP 120 untreated",
                pct,
                lambda sex=sex, race=race: float(pooled_cohort(sex=sex, race=race, **TABLE_A)),
                1,
                percent=True,
                tolerance=tol,
            )
        )
    for profile, text, pct, source in [
        (
            {
                "age": 61,
                "sex": "female",
                "total_chol": 180,
                "hdl": 47,
                "sbp": 124,
                "bp_treated": False,
                "smoker": True,
                "diabetes": False,
            },
            "F 61 y, TC 180, HDL 47, SBP 124 untreated, smoker",
            10.48,
            "FHS calculator example",
        ),
        (
            {
                "age": 53,
                "sex": "male",
                "total_chol": 161,
                "hdl": 55,
                "sbp": 125,
                "bp_treated": True,
                "smoker": False,
                "diabetes": True,
            },
            "M 53 y, TC 161, HDL 55, SBP 125 treated, DM",
            15.62,
            "FHS calculator example",
        ),
        (
            {
                "age": 55,
                "sex": "male",
                "total_chol": 213,
                "hdl": 50,
                "sbp": 140,
                "bp_treated": False,
                "smoker": False,
                "diabetes": False,
            },
            "M 55 y, TC 213, HDL 50, SBP 140 untreated",
            13.53,
            "CVrisk docs",
        ),
    ]:
        out.append(
            Example(
                "Framingham 2008",
                source,
                text,
                pct,
                lambda p=profile: float(framingham_2008(**p)),
                2,
                percent=True,
            )
        )
    for sex, region, value in [
        ("male", "low", 0.0631),
        ("male", "very_high", 0.1506),
        ("female", "low", 0.0433),
        ("female", "very_high", 0.1413),
    ]:
        out.append(
            Example(
                "SCORE2",
                "Suppl. Table 4",
                f"{sex}, 50 y smoker, SBP 140, TC 6.3, HDL 1.4 mmol/L; {region}",
                value,
                lambda sex=sex, region=region: float(score2(sex=sex, region=region, **SCORE2_T4)),
                4,
                tolerance=2e-4,
            )
        )
    return out


def _table() -> tuple[str, int, int]:
    lines = [
        "| equation | source | inputs | published | computed | match |",
        "|---|---|---|---|---|---|",
    ]
    matched = 0
    rows = examples()
    for ex in rows:
        value = ex.compute() * (100.0 if ex.percent else 1.0)
        if ex.tolerance is not None:
            ok = abs(value - ex.published) <= ex.tolerance
        else:
            ok = _half_up(value, ex.decimals) == ex.published
        matched += ok
        unit = " %" if ex.percent else ""
        lines.append(
            f"| {ex.equation} | {ex.source} | {ex.inputs} | {ex.published:.{ex.decimals}f}{unit} | "
            f"{value:.{ex.decimals + 2}f}{unit} | {'yes' if ok else '**no**'} |"
        )
    return "\n".join(lines), matched, len(rows)


def _figure(outdir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sbp = np.linspace(90.0, 180.0, 91)
    base = {"total_chol": 200, "hdl": 50, "statin": False, "egfr": 90, "bmi": 28}
    profiles = {
        "F 50, DM, treated BP (Table S25 lipids)": ("female", {**S25, "sbp": sbp}),
        "M 55, untreated, non-smoker": (
            "male",
            {
                **base,
                "age": 55,
                "bp_treated": False,
                "diabetes": False,
                "smoker": False,
                "sbp": sbp,
            },
        ),
        "M 65, smoker, treated BP": (
            "male",
            {**base, "age": 65, "bp_treated": True, "diabetes": False, "smoker": True, "sbp": sbp},
        ),
        "F 40, untreated, no risk factors": (
            "female",
            {
                **base,
                "age": 40,
                "bp_treated": False,
                "diabetes": False,
                "smoker": False,
                "sbp": sbp,
            },
        ),
    }
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (sex, kwargs) in profiles.items():
        ax.plot(sbp, 100 * prevent(sex=sex, **kwargs)["total_cvd"], label=label)
    ax.axvline(110, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("Systolic blood pressure (mmHg)")
    ax.set_ylabel("10-year total CVD risk (%)")
    ax.set_title("AHA PREVENT base model (knot at SBP 110 mmHg)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / FIGURE
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _throughput(n_patients: int = 50, n_scalar: int = 300) -> str:
    """PREVENT over 200 samples x 10 years per patient, vectorised vs one scalar call per point."""
    rng = np.random.default_rng(1)
    shape = (n_patients, 200, 10)
    sbp = rng.uniform(100.0, 170.0, shape)
    egfr = rng.uniform(40.0, 110.0, shape)
    start = time.perf_counter()
    prevent(sex="male", **{**S25, "sbp": sbp, "egfr": egfr}, hba1c=7.0)
    vec = (time.perf_counter() - start) / sbp.size
    start = time.perf_counter()
    for s, e in zip(sbp.ravel()[:n_scalar], egfr.ravel()[:n_scalar], strict=True):
        prevent(sex="male", **{**S25, "sbp": float(s), "egfr": float(e)}, hba1c=7.0)
    naive = (time.perf_counter() - start) / n_scalar
    return (
        f"PREVENT throughput, {sbp.size:,} points ({n_patients} patients x 200 samples x 10 years): "
        f"vectorised {vec * 1e6:.2f} µs/point vs scalar calls {naive * 1e6:.0f} µs/point "
        f"({naive / vec:,.0f}x); 100k patients would take ~{vec * 2000 * 1e5:.0f} s vectorised."
    )


def section(outdir: Path) -> str:
    """Markdown section: worked-example table, PREVENT figure (saved in ``outdir``), throughput."""
    table, matched, total = _table()
    figure = _figure(outdir)
    return "\n\n".join(
        [
            "### Cardiovascular risk equations",
            f"{matched} of {total} published worked-example figures reproduced "
            "(to the printed precision; Goff's white-man figure within its 0.1-point rounding, "
            "SCORE2 Table 4 within its 2e-4 intermediate rounding).",
            table,
            f"![PREVENT 10-year total CVD vs SBP](validation/{figure.name})",
            _throughput(),
        ]
    )


if __name__ == "__main__":
    from bench._report import DOC, write_section

    write_section("risk_validation", section(DOC.parent / "validation"))
