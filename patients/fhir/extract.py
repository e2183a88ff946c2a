"""A FHIR bundle straight to the twin's input, without a database (used by the backtest)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from models_engine.history import PatientHistory
from patients.fhir.parse import ParsedBundle, parse_bundle
from patients.twin_inputs import (
    ConditionSpan,
    FlaggedReadings,
    MedicationPeriod,
    ObservationPoint,
    build_history_and_flags,
)


def history_and_flags_from_parsed(
    parsed: ParsedBundle, *, reference: dt.datetime | None = None, cutoff: dt.datetime | None = None
) -> tuple[PatientHistory, dict[str, FlaggedReadings]]:
    """The patient's history and, per variable, the readings flagged as implausible."""
    points: list[ObservationPoint] = []
    for obs in parsed.observations:
        points.append(
            ObservationPoint(
                obs.code,
                obs.effective_at,
                obs.value,
                obs.value_code,
                obs.status,
                obs.implausible_reason,
            )
        )
        points.extend(
            ObservationPoint(
                c.code, c.effective_at, c.value, c.value_code, obs.status, c.implausible_reason
            )
            for c in obs.components
        )
    return build_history_and_flags(
        patient_id=parsed.patient.fhir_id,
        sex=parsed.patient.sex,
        birth_date=parsed.patient.birth_date,
        observations=points,
        medications=[
            MedicationPeriod(m.name, m.status, m.start, m.stop, m.authored_on)
            for m in parsed.medications
        ],
        conditions=[
            ConditionSpan(
                c.code, c.onset_at, c.abatement_at, c.clinical_status, c.verification_status
            )
            for c in parsed.conditions
        ],
        race=parsed.patient.race,
        reference=reference,
        cutoff=cutoff,
    )


def history_from_parsed(
    parsed: ParsedBundle, *, reference: dt.datetime | None = None, cutoff: dt.datetime | None = None
) -> PatientHistory:
    return history_and_flags_from_parsed(parsed, reference=reference, cutoff=cutoff)[0]


def history_from_bundle(
    bundle: dict[str, Any] | bytes,
    *,
    reference: dt.datetime | None = None,
    cutoff: dt.datetime | None = None,
) -> PatientHistory:
    """Parse and validate a FHIR R4 bundle and return the patient's :class:`PatientHistory`.

    ``cutoff`` drops everything observed or prescribed after it (for back-testing); ``reference``
    is the time that becomes t = 0 (default: the last observation kept).
    """
    return history_from_parsed(parse_bundle(bundle), reference=reference, cutoff=cutoff)


def history_and_flags_from_bundle(
    bundle: dict[str, Any] | bytes,
    *,
    reference: dt.datetime | None = None,
    cutoff: dt.datetime | None = None,
) -> tuple[PatientHistory, dict[str, FlaggedReadings]]:
    """:func:`history_from_bundle` plus the readings flagged as implausible, per variable."""
    return history_and_flags_from_parsed(parse_bundle(bundle), reference=reference, cutoff=cutoff)
