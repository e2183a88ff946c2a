"""Writes for research use: recording and withdrawing consent, and the de-identified export."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit import recorder
from patients.fhir.exporter import patient_bundle
from patients.models import Patient
from research import deidentify
from research.models import ResearchConsent
from research.selectors import patients_consenting

#: The research export's name in the access log.
EXPORT_ACTOR = "system:research-export"


class ConsentError(Exception):
    """A consent that cannot be recorded or withdrawn as asked (already active, already withdrawn)."""


def consent_record(
    *, patient: Patient, recorded_by: User, now: dt.datetime | None = None
) -> ResearchConsent:
    """Record that ``patient`` consents to research use of their record, from ``now`` on."""
    try:
        with transaction.atomic():
            return ResearchConsent.objects.create(
                patient=patient, recorded_by=recorded_by, recorded_at=now or timezone.now()
            )
    except IntegrityError as exc:
        # the partial unique index allows one active consent per patient, even under races
        raise ConsentError(f"patient {patient.pk} already has an active research consent") from exc


def consent_withdraw(
    *, consent: ResearchConsent, withdrawn_by: User, now: dt.datetime | None = None
) -> ResearchConsent:
    """Withdraw a consent from ``now`` on; the row stays, with who withdrew it and when."""
    when = now or timezone.now()
    updated = ResearchConsent.objects.filter(pk=consent.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=when, withdrawn_by=withdrawn_by
    )
    if not updated:
        raise ConsentError(f"research consent {consent.pk} is already withdrawn")
    consent.refresh_from_db()
    return consent


@dataclass
class ResearchExport:
    """What one export wrote: the directory, and resources per type."""

    directory: Path
    patients: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [self.directory / f"{kind}.ndjson" for kind in deidentify.RESOURCE_TYPES]


def _export_secret() -> str:
    secret: str = getattr(settings, "RESEARCH_EXPORT_SECRET", "")
    try:
        deidentify.validate_secret(secret)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TWINPORTAL_RESEARCH_SECRET: {exc}") from exc
    return secret


def research_export_write(*, directory: Path, now: dt.datetime | None = None) -> ResearchExport:
    """Write the de-identified records of the patients consenting at ``now`` as FHIR NDJSON.

    One file per resource type (``Patient.ndjson``, ...), each replaced whole: files are written
    beside their final names and renamed once every patient has been written and the export
    recorded in the access log (one read per exported patient).
    """
    secret = _export_secret()
    when = now or timezone.now()
    directory.mkdir(parents=True, exist_ok=True)
    export = ResearchExport(directory=directory, counts=dict.fromkeys(deidentify.RESOURCE_TYPES, 0))
    partial = {kind: directory / f".{kind}.ndjson.part" for kind in deidentify.RESOURCE_TYPES}
    exported: list[int] = []
    handles = {kind: path.open("w", encoding="utf-8") for kind, path in partial.items()}
    try:
        for patient in patients_consenting(at=when).iterator(chunk_size=200):
            resources = deidentify.deidentify_bundle(
                patient_bundle(patient), secret=secret, today=when.date()
            )
            for resource in resources:
                kind = resource["resourceType"]
                handles[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
                export.counts[kind] += 1
            export.patients += 1
            exported.append(patient.pk)
        # the export is in the access log before its files appear, or it does not appear at all
        recorder.system_access(
            actor_name=EXPORT_ACTOR, resource="export_research", patient_ids=exported, write=False
        )
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    finally:
        for handle in handles.values():
            handle.close()
    for kind, path in partial.items():
        path.replace(directory / f"{kind}.ndjson")
    return export
