"""``manage.py backtest --fhir PATH... --holdout-months 12 --json OUT``: how well the twin forecasts.

Bundles are parsed and validated by the records layer (no database is touched); the engine
calibrates each patient on data before the cut-off and scores the held-out readings against
last-value-carried-forward and the patient's own linear trend.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from models_engine.backtest import (
    BACKTEST_VARIABLES,
    MAX_HOLDOUT_DAYS,
    run_backtest,
    validate_holdout,
)
from models_engine.forecast import validate_samples
from models_engine.history import PatientHistory
from patients.fhir.extract import history_from_bundle
from patients.fhir.parse import BundleError
from patients.management.commands.import_fhir import bundle_paths

DAYS_PER_MONTH = 365.25 / 12


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.0f}%" if pct else f"{value:.2f}"


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
        for path in tqdm(paths, unit="bundle", disable=options["no_progress"], file=self.stderr):
            try:
                histories.append(history_from_bundle(path.read_bytes()))
            except BundleError as exc:
                raise CommandError(f"{path}: {exc}") from exc
        results = run_backtest(
            histories,
            holdout_days=holdout_days,
            n_samples=options["samples"],
            seed=options["seed"],
            treatments_known=not options["treatments_at_cutoff"],
        )
        self.stdout.write(
            f"{'variable':<9}{'n':>6}{'MAE twin':>10}{'MAE LOCF':>10}{'MAE trend':>11}{'cov80':>8}{'cov95':>8}"
        )
        for var in BACKTEST_VARIABLES:
            r = results[var]
            self.stdout.write(
                f"{var:<9}{r['n']:>6}{_fmt(r['mae_twin']):>10}{_fmt(r['mae_locf']):>10}{_fmt(r['mae_trend']):>11}"
                f"{_fmt(r['coverage80'], True):>8}{_fmt(r['coverage95'], True):>8}"
            )
        if out is not None:
            payload = {
                "generated_at": dt.datetime.now(dt.UTC).isoformat(),
                "bundles": len(paths),
                "holdout_months": options["holdout_months"],
                "samples": options["samples"],
                "treatments_known": not options["treatments_at_cutoff"],
                **results,
            }
            try:
                out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--json {out}: {exc.strerror}") from exc
            self.stderr.write(f"wrote {out}")
