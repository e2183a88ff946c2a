"""A patient's whole record as a FHIR R4 transaction bundle: the patient's access to their own data.

What this writes, the importer reads back into identical records (see tests/patients/test_fhir_roundtrip.py).
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from patients import coding
from patients.fhir.dates import format_fhir_datetime
from patients.fhir.parse import SOURCE_TAG_SYSTEM
from patients.models import ClinicalNote, Condition, Encounter, Medication, Observation, Patient

_PRACTITIONER_NS = uuid.UUID("6f1d8a52-5a43-4f2a-9d4e-0b7f1b3f7c11")
_SOURCE_TO_TAG = {"home_device": "home-device", "clinic": "clinic", "import": "import"}
_FREQUENCY = re.compile(r"^(\d+(?:\.\d+)?) per (\d+(?:\.\d+)?) (\w+)$")


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _ref(rid: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{rid}"}


class _BundleBuilder:
    def __init__(self, patient: Patient) -> None:
        self.patient = patient
        self.entries: list[dict[str, Any]] = []
        self.practitioners: dict[str, str] = {}

    def add(self, resource: dict[str, Any]) -> None:
        self.entries.append(
            {
                "fullUrl": f"urn:uuid:{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
        )

    def practitioner(self, name: str, practitioner_id: str = "") -> str:
        pid = practitioner_id or str(uuid.uuid5(_PRACTITIONER_NS, name))
        if pid not in self.practitioners:
            self.practitioners[pid] = name
            self.add({"resourceType": "Practitioner", "id": pid, "name": [{"text": name}]})
        return pid

    def role(self, name: str, role: str, practitioner_id: str) -> str:
        pid = self.practitioner(name, practitioner_id)
        rid = str(uuid.uuid5(_PRACTITIONER_NS, f"{pid}|{role}"))
        if rid not in self.practitioners:
            self.practitioners[rid] = role
            resource: dict[str, Any] = {
                "resourceType": "PractitionerRole",
                "id": rid,
                "practitioner": _ref(pid),
            }
            if role:
                resource["code"] = [{"text": role}]
            self.add(resource)
        return rid


def _patient(p: Patient) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": p.fhir_id,
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                **({"system": p.mrn_system} if p.mrn_system else {}),
                "value": p.mrn,
            }
        ],
        "name": [
            {"family": p.family_name, "given": p.given_name.split(" ") if p.given_name else []}
        ],
        "gender": p.sex,
        "birthDate": p.birth_date.isoformat(),
    }
    if p.deceased_at:
        resource["deceasedDateTime"] = format_fhir_datetime(p.deceased_at)
    extensions = []
    for kind, value in (("race", p.race), ("ethnicity", p.ethnicity)):
        if value:
            extensions.append(
                {
                    "url": f"http://hl7.org/fhir/us/core/StructureDefinition/us-core-{kind}",
                    "extension": [{"url": "text", "valueString": value}],
                }
            )
    if extensions:
        resource["extension"] = extensions
    return resource


def _value(obs: Observation) -> dict[str, Any]:
    if obs.original_value is not None or obs.value is not None:
        value = obs.original_value if obs.original_value is not None else obs.value
        unit = obs.original_unit or obs.unit
        quantity: dict[str, Any] = {"value": value}
        if unit:
            quantity.update({"unit": unit, "system": coding.UCUM, "code": unit})
        return {"valueQuantity": quantity}
    if obs.value_code:
        c: dict[str, Any] = {"code": obs.value_code}
        if obs.value_code_system:
            c["system"] = obs.value_code_system
        if obs.value_display:
            c["display"] = obs.value_display
        return {"valueCodeableConcept": {"coding": [c]}}
    if obs.value_string:
        return {"valueString": obs.value_string}
    return {}


def _observation(obs: Observation, components: list[Observation]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs.fhir_id,
        "meta": {"tag": [{"system": SOURCE_TAG_SYSTEM, "code": _SOURCE_TO_TAG[obs.source]}]},
        "status": obs.status or "final",
        "code": {
            "coding": [
                {
                    "system": coding.LOINC,
                    "code": obs.code,
                    **({"display": obs.display} if obs.display else {}),
                }
            ]
        },
        "subject": _ref(obs.patient.fhir_id),
        "effectiveDateTime": format_fhir_datetime(obs.effective_at),
        **_value(obs),
    }
    if obs.category:
        resource["category"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": obs.category,
                    }
                ]
            }
        ]
    if obs.issued_at:
        resource["issued"] = format_fhir_datetime(obs.issued_at)
    if obs.encounter_id:
        resource["encounter"] = _ref(obs.encounter.fhir_id)  # type: ignore[union-attr]
    if components:
        resource["component"] = [
            {
                "code": {
                    "coding": [
                        {
                            "system": coding.LOINC,
                            "code": c.code,
                            **({"display": c.display} if c.display else {}),
                        }
                    ]
                },
                **_value(c),
            }
            for c in components
        ]
    return resource


def patient_bundle(patient: Patient) -> dict[str, Any]:
    """The whole record of ``patient`` as a FHIR R4 transaction Bundle (a JSON-ready dict)."""
    b = _BundleBuilder(patient)
    b.add(_patient(patient))
    pref = _ref(patient.fhir_id)

    for enc in Encounter.objects.filter(patient=patient).order_by("start", "pk"):
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": enc.fhir_id,
            "status": enc.status or "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": enc.class_code or "AMB",
            },
            "subject": pref,
            "period": {
                "start": format_fhir_datetime(enc.start),
                **({"end": format_fhir_datetime(enc.end)} if enc.end else {}),
            },
        }
        if enc.type_code or enc.type_display:
            resource["type"] = [
                {
                    "coding": [
                        {
                            "system": coding.SNOMED,
                            "code": enc.type_code,
                            "display": enc.type_display,
                        }
                    ]
                }
            ]
        if enc.practitioner:
            resource["participant"] = [{"individual": _ref(b.practitioner(enc.practitioner))}]
        b.add(resource)

    observations = list(
        Observation.objects.filter(patient=patient)
        .select_related("patient", "encounter")
        .order_by("effective_at", "pk")
    )
    children: dict[int, list[Observation]] = {}
    for o in observations:
        if o.parent_id:
            children.setdefault(o.parent_id, []).append(o)
    for o in observations:
        if not o.parent_id:
            comps = sorted(children.get(o.pk, []), key=lambda c: c.component_index or 0)
            b.add(_observation(o, comps))

    for cond in (
        Condition.objects.filter(patient=patient).select_related("encounter").order_by("pk")
    ):
        resource = {
            "resourceType": "Condition",
            "id": cond.fhir_id,
            "code": {
                "coding": [
                    {
                        "system": coding.SNOMED,
                        "code": cond.code,
                        **({"display": cond.display} if cond.display else {}),
                    }
                ]
            },
            "subject": pref,
        }
        if cond.clinical_status:
            resource["clinicalStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": cond.clinical_status,
                    }
                ]
            }
        if cond.verification_status:
            resource["verificationStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": cond.verification_status,
                    }
                ]
            }
        for attr, key in (
            ("onset_at", "onsetDateTime"),
            ("abatement_at", "abatementDateTime"),
            ("recorded_at", "recordedDate"),
        ):
            when = getattr(cond, attr)
            if when:
                resource[key] = format_fhir_datetime(when)
        if cond.encounter:
            resource["encounter"] = _ref(cond.encounter.fhir_id)
        b.add(resource)

    for med in (
        Medication.objects.filter(patient=patient).select_related("encounter").order_by("pk")
    ):
        coding_: dict[str, Any] = {"system": coding.RXNORM, "display": med.name}
        if med.rxnorm_code:
            coding_["code"] = med.rxnorm_code
        resource = {
            "resourceType": "MedicationRequest",
            "id": med.fhir_id,
            "status": med.status,
            "intent": "order",
            "medicationCodeableConcept": {"coding": [coding_], "text": med.name},
            "subject": pref,
        }
        if med.authored_on:
            resource["authoredOn"] = format_fhir_datetime(med.authored_on)
        if med.requester:
            resource["requester"] = _ref(b.practitioner(med.requester))
        if med.encounter:
            resource["encounter"] = _ref(med.encounter.fhir_id)
        dosage: dict[str, Any] = {}
        if med.dosage_text:
            dosage["text"] = med.dosage_text
        repeat: dict[str, Any] = {}
        match = _FREQUENCY.match(med.frequency)
        if match:
            repeat.update(
                frequency=_number(match.group(1)),
                period=_number(match.group(2)),
                periodUnit=match.group(3),
            )
        if med.start or med.stop:
            repeat["boundsPeriod"] = {
                **({"start": format_fhir_datetime(med.start)} if med.start else {}),
                **({"end": format_fhir_datetime(med.stop)} if med.stop else {}),
            }
        if repeat:
            dosage["timing"] = {"repeat": repeat}
        if med.dose_value is not None:
            dosage["doseAndRate"] = [
                {
                    "doseQuantity": {
                        "value": med.dose_value,
                        **({"unit": med.dose_unit} if med.dose_unit else {}),
                    }
                }
            ]
        if dosage:
            resource["dosageInstruction"] = [dosage]
        b.add(resource)

    notes = (
        ClinicalNote.objects.filter(patient=patient)
        .select_related("encounter", "previous_version")
        .order_by("version", "pk")
    )
    for note in notes:
        role_id = b.role(note.author_name, note.author_role, note.author_reference)
        attachment: dict[str, Any] = {
            "contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(note.text.encode("utf-8")).decode("ascii"),
        }
        if note.title:
            attachment["title"] = note.title
        resource = {
            "resourceType": "DocumentReference",
            "id": note.fhir_id,
            "status": "current",
            "docStatus": "final" if note.is_signed else "preliminary",
            "subject": pref,
            "date": format_fhir_datetime(note.written_at),
            "author": [_ref(role_id)],
            "content": [{"attachment": attachment}],
        }
        if note.note_type_code or note.note_type:
            resource["type"] = {
                "coding": [
                    {
                        "system": coding.LOINC,
                        "code": note.note_type_code,
                        **({"display": note.note_type} if note.note_type else {}),
                    }
                ],
            }
        if note.encounter:
            resource["context"] = {"encounter": [_ref(note.encounter.fhir_id)]}
        if note.previous_version:
            resource["relatesTo"] = [
                {"code": "replaces", "target": _ref(note.previous_version.fhir_id)}
            ]
        b.add(resource)

    return {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}
