"""``manage.py twin_recompute``: start a recompute run now, as the nightly beat entry does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from twins import services
from twins.models import RecomputeRun


class Command(BaseCommand):
    help = (
        "Dispatch a recompute of every patient whose twin is due (never fitted, record changed, "
        "fit older than --stale-days, or another model version); the chunks run on the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-days",
            type=int,
            default=None,
            help="Refit fits older than this many days (default TWINPORTAL_TWIN_STALE_DAYS).",
        )
        parser.add_argument("--chunk-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        stale, size = options["stale_days"], options["chunk_size"]
        if stale is not None and stale < 0:
            raise CommandError("--stale-days must be 0 or more")
        if size is not None and not 1 <= size <= 5000:
            raise CommandError("--chunk-size must be within 1-5000")
        run = services.recompute_run_start(
            kind=RecomputeRun.Kind.MANUAL,
            triggered_by="command:twin_recompute",
            stale_after_days=stale,
            chunk_size=size,
        )
        self.stdout.write(
            f"Run {run.pk}: {run.patients_total} patients due in {run.chunks.count()} chunks "
            "(progress in the admin: Twin results > Recompute runs)."
        )
