"""``manage.py import_fhir PATH...``: import FHIR R4 bundles from files or folders.

Each bundle is imported in its own transaction (all or nothing); a failed bundle is reported with
its entry, resource type and field, and the others still import. Exit status 1 if any failed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patients.fhir.importer import bundle_import
from patients.fhir.parse import IMPORTED_TYPES, BundleError, Problem
from patients.management.progress import progress_bar
from patients.models import ImportBatch


def bundle_paths(paths: list[str]) -> list[Path]:
    """The .json files of ``paths`` (files, or folders searched recursively), each once, in order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder")
    # a file named twice (or inside a folder also named) is read once, where it first appears
    seen: set[Path] = set()
    unique: list[Path] = []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


class Command(BaseCommand):
    help = "Import FHIR R4 bundles (JSON files, or folders of them). Re-importing a bundle changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="Bundle files or folders")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = bundle_paths(options["paths"])
        if not paths:
            raise CommandError("no .json bundles found")
        totals: dict[str, Counter[str]] = {t: Counter() for t in IMPORTED_TYPES}
        outcomes: Counter[str] = Counter()
        failures: list[tuple[Path, BundleError]] = []
        bar = progress_bar(paths, stream=self.stderr, unit="bundle", disable=options["no_progress"])
        for path in bar:
            bar.set_postfix_str(path.name[:40])
            try:
                raw = path.read_bytes()
            except OSError as exc:
                problem = Problem(None, "", "(file)", f"cannot be read: {exc.strerror or exc}")
                failures.append((path, BundleError([problem])))
                outcomes["failed"] += 1
                continue
            try:
                batch = bundle_import(
                    raw=raw, channel=ImportBatch.Channel.COMMAND, filename=path.name
                )
            except BundleError as exc:
                failures.append((path, exc))
                outcomes["failed"] += 1
                continue
            outcomes[batch.status] += 1
            for rtype in IMPORTED_TYPES:
                totals[rtype].update(batch.counts.get(rtype, {}))
        bar.close()

        self.stdout.write("")
        self.stdout.write(f"{'Resource type':<20}{'created':>10}{'updated':>10}{'unchanged':>11}")
        for rtype in IMPORTED_TYPES:
            c = totals[rtype]
            self.stdout.write(
                f"{rtype:<20}{c['created']:>10}{c['updated']:>10}{c['unchanged']:>11}"
            )
        self.stdout.write(
            f"\nBundles: {len(paths)} read, {outcomes['succeeded']} imported, "
            f"{outcomes['unchanged']} unchanged, {outcomes['failed']} failed"
        )
        flagged = totals["Observation"]
        self.stdout.write(
            f"Values kept with a flag: {flagged['unit_assumed']} with an assumed unit, "
            f"{flagged['implausible']} implausible (docs/import-policy.md)"
        )
        for path, failure in failures:
            self.stderr.write(self.style.ERROR(f"{path}: nothing imported"))
            for problem in failure.problems:
                self.stderr.write(f"  {problem}")
        if failures:
            raise CommandError(f"{len(failures)} bundle(s) failed; nothing from them was written")
