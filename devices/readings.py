"""A batch of home-device readings: its shape, each reading's checks, and what each reading becomes.

Pure Python (no Django), like ``patients.fhir.parse``: the service writes what this returns. A
batch that is not the right shape is refused whole (:class:`BatchError`, every problem listed); within
a well-formed batch each reading is accepted or rejected on its own, with the field and the reason.
Units, possible and plausible ranges are those of ``patients.coding``, so a device reading is
checked and stored exactly like the same measurement in an imported FHIR bundle.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Any

from patients import coding

#: Largest number of readings one request may carry.
MAX_BATCH = 5000
#: Longest reading id a device may send.
MAX_ID_LENGTH = 100
#: A device clock this far ahead of the server is still believed.
CLOCK_SKEW = dt.timedelta(minutes=5)

BLOOD_PRESSURE, WEIGHT, GLUCOSE = "blood_pressure", "weight", "glucose"
READING_TYPES = (BLOOD_PRESSURE, WEIGHT, GLUCOSE)

#: The panel code device blood pressures are stored under (US Core and current Synthea).
BP_PANEL_CODE = "85354-9"
BP_PANEL_DISPLAY = "Blood pressure panel with all children optional"
assert BP_PANEL_CODE in coding.BP_PANEL_CODES

#: Per reading type: its category and, per value field, the variable key, LOINC code and display.
_VALUES: dict[str, tuple[str, tuple[tuple[str, str, str, str], ...]]] = {
    BLOOD_PRESSURE: (
        "vital-signs",
        (
            ("systolic", "sbp", coding.SBP_CODE, "Systolic blood pressure"),
            ("diastolic", "dbp", coding.DBP_CODE, "Diastolic blood pressure"),
        ),
    ),
    WEIGHT: ("vital-signs", (("value", "weight", "29463-7", "Body weight"),)),
    GLUCOSE: ("laboratory", (("value", "glucose", "2339-0", "Glucose [Mass/volume] in Blood"),)),
}
for _category, _fields in _VALUES.values():
    for _name, _key, _code, _display in _fields:
        assert _code in coding.VARIABLE_BY_KEY[_key].codes, _code

#: Stable ids of stored readings: one device's reading id always maps to the same FHIR id.
_FHIR_ID_NAMESPACE = uuid.UUID("0b6f3a8e-7d0c-4c55-9a4b-2f3d6c1e8a70")


@dataclass(frozen=True)
class BatchProblem:
    """Why a batch was refused whole: the reading's index (None for the batch), the field, why."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class BatchError(ValueError):
    """The batch is not the right shape; nothing of it may be stored."""

    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.index}/{p.field}: {p.message}" for p in problems[:5]))


@dataclass(frozen=True)
class Measurement:
    """One stored value: a blood pressure has two (systolic, diastolic), other readings one."""

    code: str
    display: str
    value: float
    unit: str
    original_value: float
    original_unit: str
    implausible: bool
    implausible_reason: str = ""


@dataclass(frozen=True)
class Reading:
    """A reading that passed every check."""

    index: int
    reading_id: str
    type: str
    category: str
    effective_at: dt.datetime
    measurements: tuple[Measurement, ...]

    @property
    def same_as_key(self) -> tuple[tuple[str, dt.datetime, float], ...]:
        """What makes two readings the same measurement, whoever sent them: codes, time, values."""
        return tuple((m.code, self.effective_at, round(m.value, 6)) for m in self.measurements)


@dataclass(frozen=True)
class Rejection:
    index: int
    reading_id: str
    field: str
    reason: str


def reading_fhir_id(*, token_id: int, reading_id: str) -> str:
    """The FHIR id of a device reading (a UUID, so it is a valid FHIR id and exports round-trip)."""
    return str(uuid.uuid5(_FHIR_ID_NAMESPACE, f"{token_id}/{reading_id}"))


def batch_readings(body: Any) -> list[dict[str, Any]]:
    """The readings of a request body, or :class:`BatchError` naming every structural problem."""
    if not isinstance(body, dict):
        raise BatchError([BatchProblem(None, "(body)", "must be a JSON object with 'readings'")])
    readings = body.get("readings")
    if readings is None:
        raise BatchError([BatchProblem(None, "readings", "is required")])
    if not isinstance(readings, list):
        raise BatchError([BatchProblem(None, "readings", "must be a list of readings")])
    if len(readings) > MAX_BATCH:
        raise BatchError(
            [
                BatchProblem(
                    None,
                    "readings",
                    f"{len(readings)} readings; a batch holds at most {MAX_BATCH}",
                )
            ]
        )
    problems = [
        BatchProblem(i, "(reading)", "must be a JSON object")
        for i, raw in enumerate(readings)
        if not isinstance(raw, dict)
    ]
    if problems:
        raise BatchError(problems)
    return readings


class _Rejected(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def reading_parse(
    raw: dict[str, Any],
    *,
    index: int,
    now: dt.datetime,
    types: frozenset[str] = frozenset(READING_TYPES),
    not_before: dt.datetime | None = None,
) -> Reading | Rejection:
    """Check one reading and convert its values to canonical units.

    ``types`` are the reading types the sending device may send; ``not_before`` is the earliest
    believable time (the patient's birth). The first problem found rejects the reading.
    """
    reading_id = raw.get("id")
    shown_id = reading_id if isinstance(reading_id, str) else ""
    try:
        return _parse(raw, index=index, now=now, types=types, not_before=not_before)
    except _Rejected as exc:
        return Rejection(index, shown_id[:MAX_ID_LENGTH], exc.field, exc.reason)


def _parse(
    raw: dict[str, Any],
    *,
    index: int,
    now: dt.datetime,
    types: frozenset[str],
    not_before: dt.datetime | None,
) -> Reading:
    reading_id = raw.get("id")
    if not isinstance(reading_id, str) or not reading_id.strip():
        raise _Rejected("id", "the device's own reading id is required (a non-empty string)")
    if len(reading_id) > MAX_ID_LENGTH:
        raise _Rejected("id", f"is longer than {MAX_ID_LENGTH} characters")
    kind = raw.get("type")
    if kind not in _VALUES:
        raise _Rejected("type", f"{kind!r} is not one of {', '.join(READING_TYPES)}")
    if kind not in types:
        raise _Rejected("type", f"this device's token may not send {kind} readings")
    effective_at = _time(raw.get("time"), now=now, not_before=not_before)
    unit = raw.get("unit")
    if not isinstance(unit, str) or not unit.strip():
        raise _Rejected("unit", "is required")
    category, value_fields = _VALUES[kind]
    measurements = []
    for name, key, code, display in value_fields:
        variable = coding.VARIABLE_BY_KEY[key]
        value = _number(raw.get(name), name)
        try:
            canonical = coding.to_canonical(variable, value, unit)
        except coding.UnitError as exc:
            raise _Rejected("unit", f"unknown unit: {exc}") from exc
        try:
            coding.check_possible(variable, canonical)
        except coding.RangeError as exc:
            raise _Rejected(name, f"impossible value: {exc}") from exc
        measurements.append(
            Measurement(
                code=code,
                display=display,
                value=canonical,
                unit=variable.unit,
                original_value=value,
                original_unit=unit.strip(),
                implausible=bool(reason := coding.implausible_reason(variable, canonical)),
                implausible_reason=reason,
            )
        )
    if kind == BLOOD_PRESSURE and measurements[1].value >= measurements[0].value:
        raise _Rejected("diastolic", "must be lower than the systolic pressure")
    return Reading(index, reading_id, kind, category, effective_at, tuple(measurements))


def _number(value: Any, name: str) -> float:
    if value is None:
        raise _Rejected(name, "is required")
    # bool is an int in Python but never a measurement
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Rejected(name, "must be a number")
    try:
        number = float(value)
    except OverflowError as exc:
        raise _Rejected(name, "must be a finite number") from exc
    if not math.isfinite(number):
        raise _Rejected(name, "must be a finite number")
    return number


def _time(value: Any, *, now: dt.datetime, not_before: dt.datetime | None) -> dt.datetime:
    if value is None or value == "":
        raise _Rejected("time", "is required")
    if not isinstance(value, str):
        raise _Rejected("time", "must be an ISO 8601 date and time with a timezone")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Rejected("time", f"{value!r} is not an ISO 8601 date and time") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Rejected("time", f"{value!r} has no timezone (add Z or an offset such as +01:00)")
    parsed = parsed.astimezone(dt.UTC)
    if parsed > now + CLOCK_SKEW:
        raise _Rejected("time", f"{value} is in the future")
    if not_before is not None and parsed < not_before:
        raise _Rejected("time", f"{value} is before the patient was born")
    return parsed
