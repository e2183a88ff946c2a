"""Helpers to build valid and deliberately broken bundles for the import tests."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "synthea"
SMALL = FIXTURES / "Laurie_McCullough_8a417ce8-b525-42ab-a2be-651291f73c8c.json"


def load(path: Path = SMALL) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def dumps(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle).encode("utf-8")


def first_index(bundle: dict[str, Any], rtype: str, predicate: Any = None) -> int:
    for i, entry in enumerate(bundle["entry"]):
        r = entry["resource"]
        if r["resourceType"] == rtype and (predicate is None or predicate(r)):
            return i
    raise LookupError(rtype)


def bp_index(bundle: dict[str, Any]) -> int:
    return first_index(bundle, "Observation", lambda r: "component" in r)


def weight_index(bundle: dict[str, Any]) -> int:
    return first_index(bundle, "Observation", lambda r: r["code"]["coding"][0]["code"] == "29463-7")


def with_note(
    bundle: dict[str, Any], text: bytes, *, content_type: str = "text/plain; charset=utf-8"
) -> dict[str, Any]:
    b = copy.deepcopy(bundle)
    patient = b["entry"][first_index(b, "Patient")]
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0001",
            "resource": {
                "resourceType": "Practitioner",
                "id": "0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0001",
                "name": [{"family": "Okafor", "given": ["Ben"], "prefix": ["Dr"]}],
            },
        }
    )
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0002",
            "resource": {
                "resourceType": "PractitionerRole",
                "id": "0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0002",
                "practitioner": {"reference": "urn:uuid:0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0001"},
                "code": [{"text": "cardiologist"}],
            },
        }
    )
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0003",
            "resource": {
                "resourceType": "DocumentReference",
                "id": "0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0003",
                "status": "current",
                "docStatus": "final",
                "type": {
                    "coding": [
                        {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
                    ]
                },
                "subject": {"reference": patient["fullUrl"]},
                "date": "2020-03-04T10:00:00+00:00",
                "author": [{"reference": "urn:uuid:0d9d0a47-43d5-4b5c-a1a2-0f0d8d3a0002"}],
                "content": [
                    {
                        "attachment": {
                            "contentType": content_type,
                            "data": base64.b64encode(text).decode(),
                        }
                    }
                ],
            },
        }
    )
    return b
