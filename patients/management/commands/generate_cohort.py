"""``manage.py generate_cohort --patients N``: load N synthetic patients (load tests, demos).

Patients are generated from their index, so a cohort can be loaded in parts (``--start``) or by
several processes at once (``--workers``), each inserting its own index range in chunks.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from patients.cohort.generator import generate_cohort
from patients.fhir.bulk import cohort_bulk_load
from patients.management.progress import progress_bar
from patients.models import ImportBatch


def _load_range(
    start: int, n: int, seed: int, chunk_size: int, validate: bool, batch_id: int, progress: bool
) -> dict[str, int]:
    batch = ImportBatch.objects.get(pk=batch_id)
    bundles = generate_cohort(n, seed=seed, today=dt.datetime.now(dt.UTC).date(), start=start)
    bar = progress_bar(bundles, stream=sys.stderr, unit="patient", total=n, disable=not progress)
    return cohort_bulk_load(bundles=bar, chunk_size=chunk_size, validate=validate, batch=batch)


def _worker(args: tuple[int, int, int, int, bool, int]) -> dict[str, int]:
    connections.close_all()  # a forked process must open its own database connection
    start, n, seed, chunk_size, validate, batch_id = args
    return _load_range(start, n, seed, chunk_size, validate, batch_id, progress=False)


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
            "--workers", type=int, default=1, help="Processes loading index ranges in parallel"
        )
        parser.add_argument(
            "--validate",
            action="store_true",
            help="Validate every bundle with the FHIR R4 models (slow)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        n, start, workers = options["patients"], options["start"], options["workers"]
        if n < 1 or workers < 1:
            raise CommandError("--patients and --workers must be at least 1")
        batch = ImportBatch.objects.create(
            channel=ImportBatch.Channel.SEED, filename=f"generate_cohort {n}", sha256="-"
        )
        began = time.perf_counter()
        try:
            if workers == 1:
                parts = [
                    _load_range(
                        start,
                        n,
                        options["seed"],
                        options["chunk_size"],
                        options["validate"],
                        batch.pk,
                        not options["no_progress"],
                    )
                ]
            else:
                size = -(-n // workers)
                ranges = [
                    (
                        start + i * size,
                        min(size, n - i * size),
                        options["seed"],
                        options["chunk_size"],
                        options["validate"],
                        batch.pk,
                    )
                    for i in range(workers)
                    if n - i * size > 0
                ]
                connections.close_all()
                with multiprocessing.get_context("fork").Pool(len(ranges)) as pool:
                    parts = pool.map(_worker, ranges)
        except Exception as exc:
            batch.status = ImportBatch.Status.FAILED
            batch.errors = [
                {"entry": None, "resource_type": "", "field": "", "message": str(exc)[:500]}
            ]
            batch.save()
            raise
        counts = {key: sum(p[key] for p in parts) for key in parts[0]}
        batch.status = ImportBatch.Status.SUCCEEDED
        batch.counts = {k: {"created": v} for k, v in counts.items() if k != "skipped"}
        batch.save()
        elapsed = time.perf_counter() - began
        self.stdout.write(
            f"Loaded {counts['Patient']} patients ({counts['skipped']} already present), {counts['Observation']} "
            f"observations, {counts['DocumentReference']} notes in {elapsed:.0f} s "
            f"({counts['Patient'] / max(elapsed, 1e-9):.1f} patients/s)."
        )
