"""The de-identified research export: consenting patients only, no identifier of theirs left.

Four Synthea patients are imported; two consent, one consented and withdrew, one never consented.
Every output file is searched for every identifier the source bundles hold for any of them.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from audit.models import AuditEvent
from patients.fhir.exporter import patient_bundle
from patients.models import ClinicalNote, Observation
from research.deidentify import RESOURCE_TYPES, pseudonym
from research.services import EXPORT_ACTOR, consent_record, consent_withdraw
from tests.conftest import SYNTHEA

pytestmark = pytest.mark.django_db

SECRET = "test-only-research-export-key-0123456789"
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NOTE_TEXT = "Lives alone at 14 Larkspur Lane, daughter Maribel visits on Sundays."


def _strings(node: Any) -> list[tuple[str, str]]:
    """Every (key, string value) pair in a JSON document."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                found.append((key, value))
            else:
                found.extend(_strings(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_strings(item))
    return found


def identifiers_in(bundle: dict[str, Any]) -> set[str]:
    """What would identify the patient of a bundle: names, identifiers (MRN, SSN, licences),
    address, phone numbers, every resource id, and every exact date and time."""
    needles: set[str] = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        needles.add(resource["id"])
        if entry.get("fullUrl", "").startswith("urn:uuid:"):
            needles.add(entry["fullUrl"].removeprefix("urn:uuid:"))
        if resource["resourceType"] == "Patient":
            for name in resource.get("name", []):
                needles.update(name.get("given", []))
                needles.add(name["family"])
            for identifier in resource.get("identifier", []):
                needles.add(identifier["value"])
            for address in resource.get("address", []):
                needles.update(address.get("line", []))
                needles.update(v for k, v in address.items() if k in ("city", "postalCode"))
            for telecom in resource.get("telecom", []):
                needles.add(telecom["value"])
            for extension in resource.get("extension", []):
                if extension["url"].endswith("patient-mothersMaidenName"):
                    needles.add(extension["valueString"])
            needles.add(f'"{resource["birthDate"]}"')
        for _key, value in _strings(resource):
            if _DATETIME.fullmatch(value):
                needles.add(value)
                # the same instant as the exporter writes it from the database
                needles.add(dt.datetime.fromisoformat(value).astimezone(dt.UTC).isoformat())
            elif _DATE_ONLY.match(value):
                needles.add(f'"{value}"')
    return needles


@pytest.fixture
def source_bundles() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in SYNTHEA]


@pytest.fixture
def consented(settings, data_manager, imported) -> list[Any]:
    """Patients 0 and 1 consent; 2 consented and withdrew; 3 never consented."""
    settings.RESEARCH_EXPORT_SECRET = SECRET
    for patient in imported[:2]:
        consent_record(patient=patient, recorded_by=data_manager)
    withdrawn = consent_record(patient=imported[2], recorded_by=data_manager)
    consent_withdraw(consent=withdrawn, withdrawn_by=data_manager)
    ClinicalNote.objects.create(
        patient=imported[0],
        author_name="Dr. Iris Quayle",
        written_at=dt.datetime(2019, 4, 2, 10, 15, tzinfo=dt.UTC),
        title="Home visit",
        text=NOTE_TEXT,
    )
    return imported


def export(directory: Path) -> dict[str, list[dict[str, Any]]]:
    call_command("export_research", "--out", str(directory), stdout=io.StringIO())
    return {
        kind: [json.loads(line) for line in (directory / f"{kind}.ndjson").read_text().splitlines()]
        for kind in RESOURCE_TYPES
    }


def test_it_writes_one_ndjson_file_per_resource_type_and_nothing_else(consented, tmp_path) -> None:
    resources = export(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{kind}.ndjson" for kind in RESOURCE_TYPES
    )
    for kind, rows in resources.items():
        assert rows and all(r["resourceType"] == kind for r in rows)


def test_the_export_holds_no_identifier_of_any_patient(consented, source_bundles, tmp_path) -> None:
    export(tmp_path / "out")
    text = "\n".join(p.read_text() for p in sorted((tmp_path / "out").iterdir()))
    lowered = text.lower()

    needles: set[str] = set()
    for bundle in source_bundles:
        needles |= identifiers_in(bundle)
    for patient in consented:
        needles |= identifiers_in(patient_bundle(patient))  # as stored: MRN, ids, UTC instants
        needles.add(patient.mrn)
    # the note, also as the exporter would carry it (base64 in an attachment)
    needles |= {"Quayle", "Larkspur", "Maribel", base64.b64encode(NOTE_TEXT.encode()).decode()[:40]}
    assert len(needles) > 1000  # the search is over thousands of identifiers, not a handful
    found = sorted(n for n in needles if n.lower() in lowered)
    assert found == []


def test_only_patients_consenting_now_are_exported(consented, tmp_path) -> None:
    resources = export(tmp_path / "out")
    exported = {r["id"] for r in resources["Patient"]}
    assert exported == {pseudonym(SECRET, p.fhir_id) for p in consented[:2]}
    subjects = {
        r["subject"]["reference"].removeprefix("urn:uuid:")
        for kind in RESOURCE_TYPES[1:]
        for r in resources[kind]
    }
    assert subjects == exported
    expected = Observation.objects.filter(patient__in=consented[:2], parent__isnull=True).count()
    assert len(resources["Observation"]) == expected


def test_the_export_is_in_the_access_log_as_a_read_of_each_exported_patient(
    consented, tmp_path
) -> None:
    export(tmp_path / "out")
    events = AuditEvent.objects.filter(actor_name=EXPORT_ACTOR)
    assert sorted(events.values_list("patient_id", flat=True)) == sorted(
        p.pk for p in consented[:2]
    )
    assert {(e.action, e.resource) for e in events} == {("read", "export_research")}


def test_references_point_at_exported_pseudonymous_ids(consented, tmp_path) -> None:
    resources = export(tmp_path / "out")
    ids = {r["id"] for rows in resources.values() for r in rows}
    references = {
        value.removeprefix("urn:uuid:")
        for rows in resources.values()
        for r in rows
        for key, value in _strings(r)
        if key == "reference"
    }
    assert references and references <= ids


def test_dates_move_by_one_offset_per_patient_and_birth_dates_keep_the_year_only(
    consented, tmp_path
) -> None:
    resources = export(tmp_path / "out")
    for patient in consented[:2]:
        pid = pseudonym(SECRET, patient.fhir_id)
        original = {pseudonym(SECRET, e.fhir_id): e.start for e in patient.encounters.all()}
        shifted = {
            r["id"]: dt.datetime.fromisoformat(r["period"]["start"])
            for r in resources["Encounter"]
            if r["subject"]["reference"] == f"urn:uuid:{pid}"
        }
        assert shifted.keys() == original.keys()
        offsets = {shifted[k] - original[k] for k in original}
        assert len(offsets) == 1, "one offset within a patient"
        (offset,) = offsets
        assert -dt.timedelta(days=396) < offset < -dt.timedelta(days=29)

        (row,) = [r for r in resources["Patient"] if r["id"] == pid]
        assert row["birthDate"] == str((patient.birth_date + offset).year)
        assert set(row) <= {
            "resourceType",
            "id",
            "gender",
            "birthDate",
            "deceasedDateTime",
            "extension",
        }


def test_a_re_export_with_the_same_key_gives_the_same_files(consented, tmp_path) -> None:
    export(tmp_path / "first")
    export(tmp_path / "second")
    for kind in RESOURCE_TYPES:
        assert (tmp_path / "first" / f"{kind}.ndjson").read_bytes() == (
            tmp_path / "second" / f"{kind}.ndjson"
        ).read_bytes()


def test_it_refuses_to_export_without_a_key(consented, settings, tmp_path) -> None:
    settings.RESEARCH_EXPORT_SECRET = "short"
    with pytest.raises(ImproperlyConfigured, match="TWINPORTAL_RESEARCH_SECRET"):
        export(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.ndjson"))
