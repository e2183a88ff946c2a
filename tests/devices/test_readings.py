"""The checks of one reading and of a batch's shape (pure Python, no database)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from devices.readings import (
    MAX_BATCH,
    BatchError,
    Reading,
    Rejection,
    batch_readings,
    reading_fhir_id,
    reading_parse,
)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
BORN = dt.datetime(1950, 3, 1, tzinfo=dt.UTC)


def parse(**fields: object) -> Reading | Rejection:
    raw = {
        "id": "r1",
        "type": "blood_pressure",
        "time": "2026-12-01T08:00:00+01:00",
        "systolic": 132,
        "diastolic": 84,
        "unit": "mmHg",
        **fields,
    }
    present = {k: v for k, v in raw.items() if v is not None}
    return reading_parse(present, index=0, now=NOW, not_before=BORN)


def rejected(result: Reading | Rejection) -> tuple[str, str]:
    assert isinstance(result, Rejection), result
    return result.field, result.reason


def test_it_converts_the_time_to_utc_and_keeps_the_values_as_sent() -> None:
    reading = parse()
    assert isinstance(reading, Reading)
    assert reading.effective_at == dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
    sbp, dbp = reading.measurements
    assert (sbp.code, sbp.value, sbp.unit, sbp.original_unit) == ("8480-6", 132.0, "mm[Hg]", "mmHg")
    assert (dbp.code, dbp.value) == ("8462-4", 84.0)


def test_it_converts_pounds_to_kilograms() -> None:
    reading = parse(type="weight", value=180, unit="lb", systolic=None, diastolic=None)
    assert isinstance(reading, Reading)
    assert reading.measurements[0].value == pytest.approx(81.6466, abs=1e-4)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"diastolic": 140}, "diastolic", "lower than the systolic"),
        ({"systolic": float("nan")}, "systolic", "finite"),
        ({"systolic": 10**400}, "systolic", "finite"),
        ({"systolic": True}, "systolic", "must be a number"),
        ({"systolic": "132"}, "systolic", "must be a number"),
        ({"diastolic": None}, "diastolic", "is required"),
        ({"unit": None}, "unit", "is required"),
        ({"id": "x" * 101}, "id", "longer than 100"),
        ({"id": 17}, "id", "non-empty string"),
        ({"time": "2026-12-01"}, "time", "no timezone"),
        ({"time": "yesterday"}, "time", "not an ISO 8601"),
        ({"time": 1764576000}, "time", "ISO 8601"),
        ({"time": "1949-01-01T08:00:00Z"}, "time", "before the patient was born"),
    ],
)
def test_it_rejects_a_reading_naming_the_field_and_the_reason(fields, field, reason) -> None:
    got_field, got_reason = rejected(parse(**fields))
    assert got_field == field and reason in got_reason


def test_it_allows_five_minutes_of_clock_skew_and_no_more() -> None:
    assert isinstance(parse(time=(NOW + dt.timedelta(minutes=4)).isoformat()), Reading)
    assert rejected(parse(time=(NOW + dt.timedelta(minutes=6)).isoformat()))[0] == "time"


def test_it_rejects_a_type_the_device_may_not_send() -> None:
    result = reading_parse(
        {"id": "w", "type": "weight", "time": "2026-12-01T08:00:00Z", "value": 80, "unit": "kg"},
        index=0,
        now=NOW,
        types=frozenset({"blood_pressure"}),
    )
    assert rejected(result) == ("type", "this device's token may not send weight readings")


def test_the_stored_id_is_stable_per_device_and_a_valid_fhir_id() -> None:
    first = reading_fhir_id(token_id=3, reading_id="omron/000123")
    assert first == reading_fhir_id(token_id=3, reading_id="omron/000123")
    assert first != reading_fhir_id(token_id=4, reading_id="omron/000123")
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", first)


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ([], [(None, "(body)")]),
        ({}, [(None, "readings")]),
        ({"readings": {"id": "r1"}}, [(None, "readings")]),
        ({"readings": [{"id": "r1"}, "r2", {"id": "r3"}, 4]}, [(1, "(reading)"), (3, "(reading)")]),
        ({"readings": [{}] * (MAX_BATCH + 1)}, [(None, "readings")]),
    ],
)
def test_a_batch_of_the_wrong_shape_is_refused_with_every_problem(body, problems) -> None:
    with pytest.raises(BatchError) as exc:
        batch_readings(body)
    assert [(p.index, p.field) for p in exc.value.problems] == problems
