"""``manage.py backtest --fhir PATH... --holdout-months 12 --json OUT``: how well the twin forecasts.

Bundles are parsed and validated by the records layer (no database is touched); the engine
calibrates each patient on data before the cut-off and scores the held-out readings against
last-value-carried-forward and the patient's own linear trend. A bundle that cannot be read is
named with its reason and the others are still scored (exit status 1 then).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_engine.backtest import (
    BACKTEST_VARIABLES,
    MAX_HOLDOUT_DAYS,
    PatientScore,
    run_backtest,
    validate_holdout,
)
from models_engine.forecast import validate_samples
from models_engine.history import VARIABLE_UNITS, PatientHistory
from patients.fhir.extract import history_from_bundle
from patients.fhir.parse import BundleError
from patients.management.commands.import_fhir import bundle_paths
from patients.management.progress import progress_bar

DAYS_PER_MONTH = 365.25 / 12


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.0f}%" if pct else f"{value:.2f}"


def _interval(row: dict[str, Any], name: str) -> str:
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    return "—" if low is None or high is None else f"{_fmt(low, True)} to {_fmt(high, True)}"


def _names(failures: list[tuple[Path, str]]) -> str:
    names = ", ".join(path.name for path, _why in failures[:5])
    return names + (f" and {len(failures) - 5} more" if len(failures) > 5 else "")


class Command(BaseCommand):
    help = "Back-test the twin on FHIR bundles: calibrate before a cut-off, forecast the hold-out, score."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fhir", nargs="+", required=True, help="Bundle files or folders")
        parser.add_argument("--holdout-months", type=float, default=12.0)
        parser.add_argument("--json", dest="json_out", help="Write the per-variable results here")
        parser.add_argument(
            "--samples", type=int, default=400, help="Posterior samples per patient"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--treatments-at-cutoff",
            action="store_true",
            help="Give the twin only the treatments known at the cut-off (default: the prescribed record)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = bundle_paths(options["fhir"])
        if not paths:
            raise CommandError("no .json bundles found")
        holdout_days = options["holdout_months"] * DAYS_PER_MONTH
        try:
            validate_holdout(holdout_days)
        except ValueError as exc:
            raise CommandError(
                f"--holdout-months must be within {1 / DAYS_PER_MONTH:.2f}-"
                f"{MAX_HOLDOUT_DAYS / DAYS_PER_MONTH:g}, got {options['holdout_months']:g}"
            ) from exc
        try:
            validate_samples(options["samples"])
        except ValueError as exc:
            raise CommandError(f"--samples: {exc}") from exc
        out = Path(options["json_out"]) if options["json_out"] else None
        if out is not None and not out.parent.is_dir():
            raise CommandError(f"--json {out}: folder {out.parent} does not exist")
        histories: list[PatientHistory] = []
        #: file each patient came from (the terminal names patients by it)
        files: dict[str, str] = {}
        failures: list[tuple[Path, str]] = []
        bar = progress_bar(paths, stream=self.stderr, unit="bundle", disable=options["no_progress"])
        for path in bar:
            try:
                history = history_from_bundle(path.read_bytes())
            except BundleError as exc:
                failures.append((path, str(exc)))
                continue
            except OSError as exc:
                failures.append((path, exc.strerror or str(exc)))
                continue
            histories.append(history)
            files[history.patient_id] = path.name
        if not histories:
            self._failures(failures)
            raise CommandError(
                f"none of the {len(paths)} bundle(s) could be read: {_names(failures)}"
            )
        scores: list[PatientScore] = []
        results = run_backtest(
            histories,
            holdout_days=holdout_days,
            n_samples=options["samples"],
            seed=options["seed"],
            treatments_known=not options["treatments_at_cutoff"],
            patient_scores=scores,
        )
        self._summary(results)
        for var in BACKTEST_VARIABLES:
            self._patients_table(var, [s for s in scores if s.variable == var], files)
        if out is not None:
            payload = {
                "generated_at": dt.datetime.now(dt.UTC).isoformat(),
                "bundles": len(paths),
                "holdout_months": options["holdout_months"],
                "samples": options["samples"],
                "treatments_known": not options["treatments_at_cutoff"],
                **results,
                "bootstrap": (
                    "gain_low and gain_high: 95 % percentile bootstrap interval of "
                    "1 - mae_twin / mae_locf, resampling patients "
                    "(models_engine.backtest.gain_interval); trend_gain_low and "
                    "trend_gain_high: the same for 1 - mae_twin / mae_trend; coverage80_low and "
                    "coverage80_high: the same for coverage80 "
                    "(models_engine.backtest.coverage_interval)"
                ),
                "patient_weighted": (
                    "patient_mae_* and patient_coverage80: the mean over patients of each "
                    "patient's own figure, every patient counted once; largest_patient_share: "
                    "the share of the held-out readings held by the patient with the most"
                ),
                "patients": [
                    {**dataclasses.asdict(s), "file": files.get(s.patient_id, "")} for s in scores
                ],
                "failed_bundles": [{"file": p.name, "reason": why} for p, why in failures],
            }
            try:
                out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--json {out}: {exc.strerror}") from exc
            self.stderr.write(f"wrote {out}")
        if failures:
            self._failures(failures)
            raise CommandError(
                f"{len(failures)} of {len(paths)} bundle(s) could not be read and were not "
                f"scored: {_names(failures)}"
            )

    def _summary(self, results: dict[str, dict[str, Any]]) -> None:
        self.stdout.write(
            f"{'variable':<9}{'n':>6}{'MAE twin':>10}{'MAE LOCF':>10}{'MAE trend':>11}"
            f"{'cov80':>8}{'cov80 interval':>16}{'cov95':>8}  {'gain over LOCF':<16}"
            "gain over trend (95 % bootstrap)"
        )
        for var in BACKTEST_VARIABLES:
            r = results[var]
            self.stdout.write(
                f"{var:<9}{r['n']:>6}{_fmt(r['mae_twin']):>10}{_fmt(r['mae_locf']):>10}{_fmt(r['mae_trend']):>11}"
                f"{_fmt(r['coverage80'], True):>8}{_interval(r, 'coverage80'):>16}"
                f"{_fmt(r['coverage95'], True):>8}  "
                f"{_interval(r, 'gain'):<16}{_interval(r, 'trend_gain')}"
            )
        # The pooled errors weigh a patient by their number of held-out readings: one patient
        # with many can decide them, so the same errors are also shown with each patient once.
        self.stdout.write(
            f"\nEach patient counted once\n{'variable':<9}{'patients':>9}{'MAE twin':>10}"
            f"{'MAE LOCF':>10}{'MAE trend':>11}{'cov80':>8}  largest patient's share of readings"
        )
        for var in BACKTEST_VARIABLES:
            r = results[var]
            self.stdout.write(
                f"{var:<9}{r['patients']:>9}{_fmt(r['patient_mae_twin']):>10}"
                f"{_fmt(r['patient_mae_locf']):>10}{_fmt(r['patient_mae_trend']):>11}"
                f"{_fmt(r['patient_coverage80'], True):>8}  "
                f"{_fmt(r['largest_patient_share'], True)}"
            )

    def _patients_table(self, var: str, scores: list[PatientScore], files: dict[str, str]) -> None:
        """One line per patient with held-out readings of ``var``: their errors, worst twin first."""
        self.stdout.write(
            f"\n{var} ({VARIABLE_UNITS[var]}), {len(scores)} patient(s), mean absolute errors"
        )
        if not scores:
            return
        self.stdout.write(f"{'patient':<40}{'n':>4}{'twin':>9}{'LOCF':>9}{'trend':>9}{'cov80':>7}")
        for s in sorted(scores, key=lambda s: s.mae_twin - s.mae_locf, reverse=True):
            name = files.get(s.patient_id, s.patient_id).removesuffix(".json")[:39]
            self.stdout.write(
                f"{name:<40}{s.n:>4}{_fmt(s.mae_twin):>9}{_fmt(s.mae_locf):>9}"
                f"{_fmt(s.mae_trend):>9}{_fmt(s.coverage80, True):>7}"
            )

    def _failures(self, failures: list[tuple[Path, str]]) -> None:
        for path, why in failures:
            self.stderr.write(self.style.ERROR(f"{path}: not scored: {why}"))
