"""De-identification of one patient's FHIR resources for research (pure functions, no database).

Input is what ``patients.fhir.exporter.patient_bundle`` writes. Output keeps the clinical content
(codes, values, units, statuses) and removes or replaces everything that points at the person:

- resources kept: Patient, Encounter, Observation, Condition, MedicationRequest. Notes
  (DocumentReference) and the clinicians who wrote or ordered things (Practitioner,
  PractitionerRole, participants, requesters) are left out;
- the Patient keeps only sex, race and ethnicity, a birth year and a shifted date of death: no name,
  identifier (MRN), address, telecom, photo, contact or narrative;
- free text is dropped wherever it may appear (``text``, ``note``, ``valueString``);
- every id and reference is replaced by a pseudonym, an HMAC-SHA256 of the original id under a
  secret key, so a re-export with the same key gives the same ids and links up with the last one;
- every date and time is moved back by a per-patient offset (30 to 395 days plus a number of seconds
  under a day), derived from the patient's id with the same key: intervals within a patient are exact,
  so are ages to within a year, while no original date or time of day is left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from typing import Any

#: Resource types a research export contains, in file order.
RESOURCE_TYPES = ("Patient", "Encounter", "Observation", "Condition", "MedicationRequest")

#: Keys dropped wherever they appear: identifiers of the person, the clinicians, and free text.
_DROPPED_KEYS = frozenset(
    {
        "identifier",
        "name",
        "telecom",
        "address",
        "photo",
        "contact",
        "text",
        "note",
        "valueString",
        "participant",
        "requester",
        "performer",
        "author",
        "recorder",
        "asserter",
        "generalPractitioner",
        "managingOrganization",
        "serviceProvider",
        "link",
        "contained",
    }
)
_PATIENT_EXTENSIONS = (
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MIN_SHIFT_DAYS = 30
_SHIFT_DAYS_RANGE = 366
#: Ages above this are not given as a birth year (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)).
_MAX_REPORTED_AGE = 89
MIN_SECRET_LENGTH = 32


def validate_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"the research export key must be at least {MIN_SECRET_LENGTH} characters, got {len(secret)}"
        )


def _digest(secret: str, purpose: str, value: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()


def pseudonym(secret: str, original_id: str) -> str:
    """The research id of a resource: the same for the same id and key, unlinkable without the key."""
    return str(uuid.UUID(bytes=_digest(secret, "id", original_id)[:16], version=4))


def date_offset(secret: str, patient_id: str) -> dt.timedelta:
    """How far back every date of this patient moves (negative; 30 to 395 days and some seconds)."""
    number = int.from_bytes(_digest(secret, "shift", patient_id)[:8], "big")
    days = _MIN_SHIFT_DAYS + number % _SHIFT_DAYS_RANGE
    seconds = (number // _SHIFT_DAYS_RANGE) % 86_400
    return -dt.timedelta(days=days, seconds=seconds)


def _shift(value: str, offset: dt.timedelta) -> str:
    if _DATETIME.match(value):
        moved = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) + offset
        return moved.astimezone(dt.UTC).isoformat()
    if _DATE.match(value):
        return (dt.date.fromisoformat(value) + offset).isoformat()
    return value


def _reference(value: str, secret: str) -> str:
    if value.startswith("urn:uuid:"):
        return f"urn:uuid:{pseudonym(secret, value.removeprefix('urn:uuid:'))}"
    kind, sep, rid = value.rpartition("/")
    return f"{kind}/{pseudonym(secret, rid)}" if sep else pseudonym(secret, value)


def _scrub(node: Any, *, secret: str, offset: dt.timedelta) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED_KEYS:
                continue
            if key == "reference" and isinstance(value, str):
                out[key] = _reference(value, secret)
            elif key == "id" and isinstance(value, str):
                out[key] = pseudonym(secret, value)
            else:
                out[key] = _scrub(value, secret=secret, offset=offset)
        return out
    if isinstance(node, list):
        return [_scrub(item, secret=secret, offset=offset) for item in node]
    if isinstance(node, str):
        return _shift(node, offset)
    return node


def _birth_year(birth_date: str, offset: dt.timedelta, today: dt.date) -> str | None:
    born = dt.date.fromisoformat(birth_date[:10])
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age > _MAX_REPORTED_AGE:
        return None
    return str((born + offset).year)


def _patient(
    resource: dict[str, Any], *, secret: str, offset: dt.timedelta, today: dt.date
) -> dict[str, Any]:
    # Built from an allow-list: a field added to the exporter later stays out until chosen here.
    out: dict[str, Any] = {"resourceType": "Patient", "id": pseudonym(secret, resource["id"])}
    if "gender" in resource:
        out["gender"] = resource["gender"]
    if resource.get("birthDate"):
        year = _birth_year(resource["birthDate"], offset, today)
        if year:
            out["birthDate"] = year
    if resource.get("deceasedDateTime"):
        out["deceasedDateTime"] = _shift(resource["deceasedDateTime"], offset)
    extensions = []
    for extension in resource.get("extension", []):
        # race and ethnicity are categories ("White", "Not Hispanic or Latino"), kept for research
        if extension.get("url") not in _PATIENT_EXTENSIONS:
            continue
        texts = [
            e["valueString"]
            for e in extension.get("extension", [])
            if e.get("url") == "text" and isinstance(e.get("valueString"), str)
        ]
        if texts:
            extensions.append(
                {"url": extension["url"], "extension": [{"url": "text", "valueString": texts[0]}]}
            )
    if extensions:
        out["extension"] = extensions
    return out


def deidentify_bundle(
    bundle: dict[str, Any], *, secret: str, today: dt.date
) -> list[dict[str, Any]]:
    """The research copies of the resources of one patient's bundle, in bundle order.

    Parameters
    ----------
    bundle : dict
        One patient's record as ``patient_bundle`` writes it (its first entry is the Patient).
    secret : str
        The export key (``TWINPORTAL_RESEARCH_SECRET``), at least 32 characters.
    today : date
        The export date, for the age above which no birth year is given.
    """
    validate_secret(secret)
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"a research bundle holds exactly one Patient, got {len(patients)}")
    offset = date_offset(secret, patients[0]["id"])
    out: list[dict[str, Any]] = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Patient":
            out.append(_patient(resource, secret=secret, offset=offset, today=today))
        elif kind in RESOURCE_TYPES:
            out.append(_scrub(resource, secret=secret, offset=offset))
    return out
