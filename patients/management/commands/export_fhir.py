"""``manage.py export_fhir --mrn MRN --out FILE``: one patient's whole record as a FHIR R4 bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import recorder
from patients.fhir.exporter import patient_bundle
from patients.models import Patient


class Command(BaseCommand):
    help = "Export one patient's record as a FHIR R4 Bundle (JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--mrn")
        group.add_argument("--fhir-id")
        parser.add_argument("--out", required=True, help="File to write, or - for standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        lookup = {"mrn": options["mrn"]} if options["mrn"] else {"fhir_id": options["fhir_id"]}
        try:
            patient = Patient.objects.get(**lookup)
        except Patient.DoesNotExist as exc:
            raise CommandError("no patient with that identifier") from exc
        # in the access log before the record leaves, under the command's own system actor
        recorder.system_access(
            actor_name="system:export-fhir-command",
            resource="export_fhir",
            patient_ids=[patient.pk],
            write=False,
        )
        text = json.dumps(patient_bundle(patient), indent=1)
        if options["out"] == "-":
            self.stdout.write(text)
        else:
            Path(options["out"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {options['out']}")
