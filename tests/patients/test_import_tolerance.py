"""Tolerant, honest import: what is read with a flag, what is still refused (docs/import-policy.md)."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from patients import coding
from patients.fhir.importer import bundle_import
from patients.fhir.parse import BundleError, parse_bundle
from patients.models import CareTeam, ImportBatch, Observation
from tests.conftest import FIXTURES
from tests.second_factor import verified_login

UNITLESS_PANEL = FIXTURES / "import" / "unitless_bp_panel.json"


def panel() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(UNITLESS_PANEL.read_text(encoding="utf-8"))
    return data


def with_observation(code: str, quantity: dict[str, Any]) -> dict[str, Any]:
    """The fixture plus one laboratory observation of ``code`` carrying ``quantity``."""
    b = copy.deepcopy(panel())
    b["entry"].append(
        {
            "fullUrl": "urn:uuid:5b0e6a52-2f51-4c38-9d0e-7a1c2b3d4fa0",
            "resource": {
                "resourceType": "Observation",
                "id": "5b0e6a52-2f51-4c38-9d0e-7a1c2b3d4fa0",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": b["entry"][0]["fullUrl"]},
                "effectiveDateTime": "2019-10-01T09:00:00+00:00",
                "valueQuantity": quantity,
            },
        }
    )
    return b


def test_it_reads_unitless_blood_pressure_components_in_mmhg_and_marks_the_unit_assumed() -> None:
    parsed = parse_bundle(UNITLESS_PANEL.read_bytes())
    components = [c for o in parsed.observations for c in o.components]
    assert len(components) == 4
    assert {(c.unit, c.original_unit, c.unit_assumed) for c in components} == {("mm[Hg]", "", True)}
    assert parsed.flag_counts == {"unit_assumed": 4, "implausible": 0}


@pytest.mark.django_db
def test_it_stores_the_assumed_unit_and_counts_it_in_the_import_summary() -> None:
    batch = bundle_import(raw=UNITLESS_PANEL.read_bytes(), channel="command")
    assert batch.status == ImportBatch.Status.SUCCEEDED
    assert batch.counts["Observation"] == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "unit_assumed": 4,
        "implausible": 0,
    }
    rows = Observation.objects.filter(code__in=[coding.SBP_CODE, coding.DBP_CODE])
    assert sorted((r.code, r.value, r.unit, r.unit_assumed) for r in rows) == [
        ("8462-4", 78.44, "mm[Hg]", True),
        ("8462-4", 81.2, "mm[Hg]", True),
        ("8480-6", 135.66, "mm[Hg]", True),
        ("8480-6", 141.9, "mm[Hg]", True),
    ]
    # the panel rows themselves hold no value and assumed nothing
    assert not Observation.objects.filter(parent__isnull=True, unit_assumed=True).exists()


def test_a_missing_unit_on_a_code_with_several_units_is_refused_by_entry_and_field() -> None:
    bundle = with_observation("4548-4", {"value": 6.1, "system": "http://unitsofmeasure.org"})
    with pytest.raises(BundleError) as caught:
        parse_bundle(bundle)
    (problem,) = caught.value.problems
    assert (problem.entry, problem.resource_type, problem.field) == (
        3,
        "Observation",
        "valueQuantity.code",
    )
    assert "% or mmol/mol" in problem.message


def test_an_unknown_unit_is_still_refused_even_where_the_code_has_one_unit() -> None:
    b = panel()
    b["entry"][1]["resource"]["component"][0]["valueQuantity"]["code"] = "kPa"
    with pytest.raises(BundleError, match=r"entry 1 \(Observation\), field component\[0\]"):
        parse_bundle(b)


def test_an_implausible_hba1c_is_kept_with_its_reason() -> None:
    bundle = with_observation("4548-4", {"value": 3.0, "unit": "%", "code": "%"})
    parsed = parse_bundle(bundle)
    hba1c = next(o for o in parsed.observations if o.code == "4548-4")
    assert (hba1c.value, hba1c.implausible, hba1c.unit_assumed) == (3.0, True, False)
    assert hba1c.implausible_reason == "HbA1c 3 % is below the plausible range 4-18 %"
    assert parsed.flag_counts == {"unit_assumed": 4, "implausible": 1}


def test_every_plausible_range_has_a_source_and_lies_within_the_possible_range() -> None:
    path = Path(coding.__file__).parent / "data" / "plausible_ranges.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["variable"] for r in rows} == set(coding.VARIABLE_BY_KEY)
    for row in rows:
        assert len(row["source"]) > 40, row["variable"]
        low, high = coding.VARIABLE_BY_KEY[row["variable"]].possible
        assert low <= float(row["low"]) < float(row["high"]) <= high, row["variable"]


@pytest.mark.django_db
def test_the_import_command_counts_assumed_units_in_its_summary() -> None:
    out = io.StringIO()
    call_command(
        "import_fhir", str(UNITLESS_PANEL), "--no-progress", stdout=out, stderr=io.StringIO()
    )
    assert "Values kept with a flag: 4 with an assumed unit, 0 implausible" in out.getvalue()


@pytest.mark.django_db
def test_the_api_and_the_admin_show_the_assumed_unit(clinician, data_manager) -> None:
    batch = bundle_import(raw=UNITLESS_PANEL.read_bytes(), channel="command")
    team = CareTeam.objects.create(name="Panel team")
    team.members.add(clinician)
    team.patients.add(batch.patient)
    api = Client()
    api.force_login(clinician)
    data = api.get(
        reverse("patients-api:patient-observations", args=[batch.patient_id]),
        {"code": coding.SBP_CODE},
    ).json()
    assert [(r["unit"], r["unit_assumed"]) for r in data["results"]] == [("mm[Hg]", True)] * 2
    admin = Client()
    verified_login(admin, data_manager)
    listing = admin.get(
        reverse("admin:patients_observation_changelist"), {"unit_assumed__exact": "1"}
    )
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 4
    assert "column-unit_assumed" in listing.content.decode()
    one = Observation.objects.filter(unit_assumed=True).first()
    assert one is not None
    detail = admin.get(reverse("admin:patients_observation_change", args=[one.pk]))
    assert "field-unit_assumed" in detail.content.decode()


def test_the_engine_checks_its_inputs_against_the_same_limits_the_import_flags() -> None:
    from models_engine.calibration import plausible_ranges as engine_ranges

    records = coding.plausible_ranges()
    for variable, (low, high, unit) in engine_ranges().items():
        assert (low, high, unit) == (
            records[variable].low,
            records[variable].high,
            coding.VARIABLE_BY_KEY[variable].unit,
        ), variable
