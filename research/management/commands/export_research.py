"""``manage.py export_research --out DIR``: the de-identified research export (FHIR NDJSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from research.services import research_export_write


class Command(BaseCommand):
    help = (
        "Write the de-identified records of the patients whose research consent is active now, "
        "as FHIR NDJSON, one file per resource type."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="Directory to write the files into")

    def handle(self, *args: Any, **options: Any) -> None:
        export = research_export_write(directory=Path(options["out"]))
        for path in export.files:
            self.stdout.write(f"{path}  {export.counts[path.stem]} resources")
        self.stdout.write(f"{export.patients} consenting patients exported")
