"""``manage.py generate_cohort --patients N``: load N synthetic patients (load tests, demos)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from patients.cohort.generator import generate_cohort
from patients.fhir.bulk import cohort_bulk_load
from patients.models import ImportBatch


class Command(BaseCommand):
    help = "Generate and load N synthetic patients with the demo generator (bulk inserts, chunked)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--start", type=int, default=0, help="Index of the first patient (to extend a cohort)"
        )
        parser.add_argument("--chunk-size", type=int, default=200)
        parser.add_argument(
            "--validate",
            action="store_true",
            help="Validate every bundle with the FHIR R4 models (slow)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        n, start = options["patients"], options["start"]
        batch = ImportBatch.objects.create(
            channel=ImportBatch.Channel.SEED, filename=f"generate_cohort {n}", sha256="-"
        )
        began = time.perf_counter()
        bundles = generate_cohort(
            n + start, seed=options["seed"], today=dt.datetime.now(dt.UTC).date()
        )
        bar = tqdm(
            bundles,
            total=n + start,
            unit="patient",
            disable=options["no_progress"],
            file=self.stderr,
        )

        def skip_first() -> Any:
            for i, b in enumerate(bar):
                if i >= start:
                    yield b

        try:
            counts = cohort_bulk_load(
                bundles=skip_first(),
                chunk_size=options["chunk_size"],
                validate=options["validate"],
                batch=batch,
            )
        except Exception as exc:
            batch.status = ImportBatch.Status.FAILED
            batch.errors = [
                {"entry": None, "resource_type": "", "field": "", "message": str(exc)[:500]}
            ]
            batch.save()
            raise
        bar.close()
        batch.status = ImportBatch.Status.SUCCEEDED
        batch.counts = {k: {"created": v} for k, v in counts.items() if k != "skipped"}
        batch.save()
        elapsed = time.perf_counter() - began
        self.stdout.write(
            f"Loaded {counts['Patient']} patients ({counts['skipped']} already present), {counts['Observation']} observations, "
            f"{counts['DocumentReference']} notes in {elapsed:.0f} s."
        )
