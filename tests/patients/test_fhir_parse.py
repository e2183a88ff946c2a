"""Parsing and validating FHIR bundles: every problem names the entry, resource type and field."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter

import pytest

from patients.fhir.parse import BundleError, parse_bundle
from tests.patients import bundles
from tests.patients.bundles import bp_index, dumps, first_index, load, weight_index


def problems_of(raw: bytes | dict) -> list[str]:
    with pytest.raises(BundleError) as caught:
        parse_bundle(raw)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", sorted(bundles.FIXTURES.glob("*.json")), ids=lambda p: p.name[:20])
def test_it_maps_every_imported_resource_of_a_synthea_bundle(path) -> None:
    raw = json.loads(path.read_text())
    expected = Counter(e["resource"]["resourceType"] for e in raw["entry"])
    parsed = parse_bundle(path.read_bytes())
    assert len(parsed.encounters) == expected["Encounter"]
    assert len(parsed.observations) == expected["Observation"]
    assert len(parsed.conditions) == expected["Condition"]
    assert len(parsed.medications) == expected["MedicationRequest"]


def test_it_turns_a_blood_pressure_panel_into_systolic_and_diastolic_components() -> None:
    parsed = parse_bundle(bundles.SMALL.read_bytes())
    panel = next(o for o in parsed.observations if o.code == "55284-4")
    assert {c.code for c in panel.components} == {"8480-6", "8462-4"}
    assert all(c.unit == "mm[Hg]" and c.value for c in panel.components)


def test_it_reports_invalid_json_with_line_and_column() -> None:
    (message,) = problems_of(b'{"resourceType": "Bundle",\n "entry": [}')
    assert "invalid JSON at line 2 column" in message


def test_it_reports_a_schema_violation_with_entry_type_and_field() -> None:
    b = load()
    i = bp_index(b)
    b["entry"][i]["resource"]["status"] = 12
    (message,) = problems_of(dumps(b))
    assert message.startswith(f"entry {i} (Observation), field status:")


def test_it_refuses_a_bundle_without_a_patient() -> None:
    b = load()
    del b["entry"][first_index(b, "Patient")]
    (message,) = problems_of(dumps(b))
    assert "no Patient resource" in message


def test_it_refuses_an_unknown_unit_naming_the_field() -> None:
    b = load()
    i = weight_index(b)
    b["entry"][i]["resource"]["valueQuantity"].update(unit="stone", code="stone")
    (message,) = problems_of(dumps(b))
    assert message.startswith(f"entry {i} (Observation), field valueQuantity.code: unknown unit")


def test_it_refuses_an_impossible_systolic_pressure_naming_the_component() -> None:
    b = load()
    i = bp_index(b)
    comps = b["entry"][i]["resource"]["component"]
    k = next(k for k, c in enumerate(comps) if c["code"]["coding"][0]["code"] == "8480-6")
    comps[k]["valueQuantity"]["value"] = 900
    (message,) = problems_of(dumps(b))
    assert f"entry {i} (Observation), field component[{k}].valueQuantity.value" in message
    assert "outside the possible range 40–300" in message


def test_it_refuses_a_negative_weight() -> None:
    b = load()
    i = weight_index(b)
    b["entry"][i]["resource"]["valueQuantity"]["value"] = -70
    (message,) = problems_of(dumps(b))
    assert f"entry {i} (Observation)" in message and "possible range" in message


def test_it_refuses_a_date_in_the_future() -> None:
    b = load()
    i = weight_index(b)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    b["entry"][i]["resource"]["effectiveDateTime"] = future
    (message,) = problems_of(dumps(b))
    assert (
        f"entry {i} (Observation), field effectiveDateTime" in message
        and "in the future" in message
    )


def test_it_refuses_a_resource_about_someone_else() -> None:
    b = load()
    i = weight_index(b)
    b["entry"][i]["resource"]["subject"]["reference"] = "urn:uuid:not-this-patient"
    (message,) = problems_of(dumps(b))
    assert f"entry {i} (Observation), field subject.reference" in message


def test_it_reads_a_medication_given_by_reference_to_a_medication_resource() -> None:
    b = load()
    i = first_index(b, "MedicationRequest")
    request = b["entry"][i]["resource"]
    concept = request.pop("medicationCodeableConcept")
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:5e0f6a8e-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "Medication",
                "id": "5e0f6a8e-0000-4000-8000-000000000001",
                "code": concept,
            },
        }
    )
    request["medicationReference"] = {"reference": "urn:uuid:5e0f6a8e-0000-4000-8000-000000000001"}
    parsed = parse_bundle(dumps(b))
    assert any(m.name == concept["text"] for m in parsed.medications)


def test_it_decodes_a_note_and_its_author_role() -> None:
    parsed = parse_bundle(dumps(bundles.with_note(load(), b"Seen in clinic. Denies chest pain.")))
    (note,) = parsed.notes
    assert (note.text, note.author_name, note.author_role, note.status) == (
        "Seen in clinic. Denies chest pain.",
        "Dr Ben Okafor",
        "cardiologist",
        "signed",
    )


def test_it_refuses_a_note_in_the_wrong_encoding() -> None:
    b = bundles.with_note(load(), "Patient seen by Dr Müller".encode("latin-1"))
    (message,) = problems_of(dumps(b))
    assert (
        "(DocumentReference), field content[0].attachment.data: not valid base64 utf-8 text"
        in message
    )


def test_it_lists_several_problems_at_once() -> None:
    b = copy.deepcopy(load())
    b["entry"][weight_index(b)]["resource"]["valueQuantity"]["value"] = -1
    b["entry"][bp_index(b)]["resource"]["status"] = 3
    assert len(problems_of(dumps(b))) == 1  # schema problems stop before mapping
    b["entry"][bp_index(b)]["resource"]["status"] = "final"
    assert len(problems_of(dumps(b))) == 1


@pytest.mark.parametrize(
    ("rtype", "field", "path"),
    [
        ("Observation", "status", ("status",)),
        ("Encounter", "status", ("status",)),
        ("MedicationRequest", "status", ("status",)),
        ("Condition", "clinicalStatus", ("clinicalStatus", "coding", 0, "code")),
    ],
)
def test_it_refuses_a_code_outside_a_required_value_set(rtype, field, path) -> None:
    b = load()
    i = first_index(b, rtype)
    holder = b["entry"][i]["resource"]
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = "bogus"
    (message,) = problems_of(dumps(b))
    assert message.startswith(f"entry {i} ({rtype}), field {field}: 'bogus' is not one of")


def test_the_twin_ignores_readings_entered_in_error_and_refuted_diagnoses() -> None:
    from patients.fhir.extract import history_from_bundle

    b = load(bundles.FIXTURES / "Emery_Purdy_298c62e6-b204-4a14-8e21-73d5be0ce22e.json")
    clean = history_from_bundle(copy.deepcopy(b))
    assert clean.diabetes is True
    i = weight_index(b)
    b["entry"][i]["resource"]["status"] = "entered-in-error"
    b["entry"][i]["resource"]["valueQuantity"]["value"] = 250.0
    for e in b["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Condition":
            r["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    h = history_from_bundle(b)
    assert h.observations["weight"].y.size == clean.observations["weight"].y.size - 1
    assert 250.0 not in h.observations["weight"].y
    assert h.diabetes is False
