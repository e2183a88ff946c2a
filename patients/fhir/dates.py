"""FHIR date and dateTime values as timezone-aware UTC datetimes."""

from __future__ import annotations

import datetime as dt
import re

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_fhir_datetime(value: str) -> dt.datetime:
    """Parse a FHIR ``date``/``dateTime`` (``2019``, ``2019-05``, ``2019-05-03``, or a full instant).

    Partial dates are taken as the first instant of the period, in UTC.
    """
    match = _PARTIAL.match(value)
    if match:
        year, month, day = (int(g) if g else 1 for g in match.groups())
        return dt.datetime(year, month, day, tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"dateTime {value!r} has a time but no timezone")
    return parsed.astimezone(dt.UTC)


def format_fhir_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()
