"""Writes for home devices: issuing and revoking tokens, and storing the readings devices send."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from devices.models import DeviceKind, DeviceToken
from devices.readings import (
    BLOOD_PRESSURE,
    BP_PANEL_CODE,
    BP_PANEL_DISPLAY,
    GLUCOSE,
    WEIGHT,
    Measurement,
    Reading,
    Rejection,
    batch_readings,
    reading_fhir_id,
    reading_parse,
)
from devices.selectors import TOKEN_TAG, secret_sha256
from patients.models import Observation, Patient
from twins.services import twin_recalibration_request

logger = logging.getLogger(__name__)

#: The reading types each kind of device may send.
READING_TYPES_BY_KIND: dict[str, frozenset[str]] = {
    DeviceKind.BP_CUFF: frozenset({BLOOD_PRESSURE}),
    DeviceKind.SCALE: frozenset({WEIGHT}),
    DeviceKind.GLUCOSE_METER: frozenset({GLUCOSE}),
}
#: ``last_used_at`` is written at most this often, not on every request of a busy device.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class IssuedToken:
    token: DeviceToken
    #: the whole token, to be shown once and never again (only its hash is stored)
    secret: str


def device_token_issue(
    *,
    patient: Patient,
    kind: str,
    label: str,
    created_by: User,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    """Create a token for one patient's device; the secret is in the answer and nowhere else."""
    if kind not in DeviceKind.values:
        raise ValueError(f"kind must be one of {', '.join(DeviceKind.values)}, got {kind!r}")
    prefix = secrets.token_urlsafe(6)
    secret = f"{TOKEN_TAG}{prefix}_{secrets.token_urlsafe(32)}"
    token = DeviceToken.objects.create(
        patient=patient,
        kind=kind,
        label=label,
        prefix=prefix,
        secret_sha256=secret_sha256(secret),
        created_by=created_by,
        expires_at=expires_at,
    )
    logger.info(
        "device token issued",
        extra={"device_token": token.pk, "patient_id": patient.pk, "user_id": created_by.pk},
    )
    return IssuedToken(token=token, secret=secret)


def device_tokens_revoke(
    *, token_ids: Iterable[int], revoked_by: User, now: dt.datetime | None = None
) -> int:
    """Revoke the tokens not yet revoked; returns how many were. Revocation cannot be undone."""
    ids = list(token_ids)
    count = DeviceToken.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now(), revoked_by=revoked_by
    )
    logger.info(
        "device tokens revoked",
        extra={"revoked": count, "asked": len(ids), "user_id": revoked_by.pk},
    )
    return count


def device_token_touch(*, token: DeviceToken, now: dt.datetime) -> None:
    """Record that the token was just used (to the minute, so a busy device costs no write a request)."""
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


@dataclass(frozen=True)
class ReadingOutcome:
    index: int
    id: str
    status: str
    field: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == REJECTED:
            out["field"], out["reason"] = self.field, self.reason
        return out


@dataclass(frozen=True)
class IngestResult:
    """What happened to each reading of a batch, in the order they were sent."""

    outcomes: list[ReadingOutcome]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            ACCEPTED: self.count(ACCEPTED),
            DUPLICATE: self.count(DUPLICATE),
            REJECTED: self.count(REJECTED),
            "results": [o.as_dict() for o in self.outcomes],
        }


def device_readings_ingest(
    *, token: DeviceToken, body: Any, now: dt.datetime | None = None
) -> IngestResult:
    """Store the new, valid readings of one batch from one device, all in one transaction.

    Raises :class:`devices.readings.BatchError` (nothing written) when the batch is not the right
    shape. Otherwise each reading is accepted, a duplicate of one already stored (or sent earlier in
    the batch), or rejected with the field and the reason. If anything was accepted, the patient's
    twin is asked to recalibrate (once per batch; the message goes out after the commit).
    """
    raws = batch_readings(body)
    now = now or timezone.now()
    born = dt.datetime.combine(token.patient.birth_date, dt.time(), tzinfo=dt.UTC)
    types = READING_TYPES_BY_KIND[token.kind]
    outcomes: dict[int, ReadingOutcome] = {}
    valid: list[Reading] = []
    for index, raw in enumerate(raws):
        parsed = reading_parse(raw, index=index, now=now, types=types, not_before=born)
        if isinstance(parsed, Rejection):
            outcomes[index] = ReadingOutcome(
                index, parsed.reading_id, REJECTED, parsed.field, parsed.reason
            )
        else:
            valid.append(parsed)
    if valid:
        with transaction.atomic():
            new = _new_readings(token, valid)
            _store(token, new, now)
            if new:
                # Inside the transaction, as the twin asks: the request commits with the readings
                # (so it cannot be lost between the two), and its Celery message is queued after
                # the commit, debounced, so a burst of batches causes one fit.
                twin_recalibration_request(patient_ids=[token.patient_id], reason="device")
        new_indexes = {r.index for r in new}
        for r in valid:
            outcomes[r.index] = ReadingOutcome(
                r.index, r.reading_id, ACCEPTED if r.index in new_indexes else DUPLICATE
            )
    result = IngestResult([outcomes[i] for i in range(len(raws))])
    logger.info(
        "device readings received",
        extra={
            "device_token": token.pk,
            "patient_id": token.patient_id,
            "accepted": result.count(ACCEPTED),
            "duplicate": result.count(DUPLICATE),
            "rejected": result.count(REJECTED),
        },
    )
    return result


def _new_readings(token: DeviceToken, readings: list[Reading]) -> list[Reading]:
    """The readings neither stored already nor sent earlier in the batch.

    The same reading is recognised by its id from this device, or by the same code, time and
    value already in the patient's record from any source.
    """
    # One batch per patient at a time: two copies of a reading sent at once cannot both be new.
    list(Patient.objects.select_for_update(no_key=True).filter(pk=token.patient_id).values("pk"))
    fhir_ids = {
        r.index: reading_fhir_id(token_id=token.pk, reading_id=r.reading_id) for r in readings
    }
    stored_ids = set(
        Observation.objects.filter(fhir_id__in=fhir_ids.values()).values_list("fhir_id", flat=True)
    )
    stored_values = {
        (code, effective_at, round(value, 6))
        for code, effective_at, value in Observation.objects.filter(
            patient_id=token.patient_id,
            code__in={m.code for r in readings for m in r.measurements},
            effective_at__in={r.effective_at for r in readings},
        ).values_list("code", "effective_at", "value")
        if value is not None
    }
    seen_ids: set[str] = set()
    seen_values: set[tuple[Any, ...]] = set()
    new = []
    for r in readings:
        fhir_id, same_as = fhir_ids[r.index], r.same_as_key
        duplicate = (
            fhir_id in stored_ids
            or fhir_id in seen_ids
            or same_as in seen_values
            or all(key in stored_values for key in same_as)
        )
        seen_ids.add(fhir_id)
        seen_values.add(same_as)
        if not duplicate:
            new.append(r)
    return new


def _measured(m: Measurement) -> dict[str, Any]:
    return {
        "code": m.code,
        "display": m.display,
        "value": m.value,
        "unit": m.unit,
        "original_value": m.original_value,
        "original_unit": m.original_unit,
        "implausible": m.implausible,
        "implausible_reason": m.implausible_reason,
    }


def _store(token: DeviceToken, readings: list[Reading], now: dt.datetime) -> None:
    """Bulk-insert the readings the way the FHIR importer stores the same observations.

    A blood pressure is a panel row without a value whose systolic and diastolic components are
    rows of their own (ids ``<panel>#0`` and ``<panel>#1``), as ``patients.fhir.importer`` writes a
    panel, so the twin reads device and imported readings alike.
    """
    rows: list[Observation] = []
    components: list[tuple[Observation, int, Measurement]] = []
    for r in readings:
        common: dict[str, Any] = {
            "patient_id": token.patient_id,
            "fhir_id": reading_fhir_id(token_id=token.pk, reading_id=r.reading_id),
            "category": r.category,
            "effective_at": r.effective_at,
            "issued_at": now,
            "source": Observation.Source.HOME_DEVICE,
        }
        if r.type == BLOOD_PRESSURE:
            panel = Observation(code=BP_PANEL_CODE, display=BP_PANEL_DISPLAY, **common)
            rows.append(panel)
            components.extend((panel, i, m) for i, m in enumerate(r.measurements))
        else:
            rows.append(Observation(**common, **_measured(r.measurements[0])))
    Observation.objects.bulk_create(rows, batch_size=1000)
    Observation.objects.bulk_create(
        [
            Observation(
                patient_id=token.patient_id,
                fhir_id=f"{panel.fhir_id}#{i}",
                parent=panel,
                component_index=i,
                category=panel.category,
                effective_at=panel.effective_at,
                issued_at=now,
                source=Observation.Source.HOME_DEVICE,
                **_measured(m),
            )
            for panel, i, m in components
        ],
        batch_size=1000,
    )
