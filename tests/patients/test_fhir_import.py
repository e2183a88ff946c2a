"""Importing bundles into the records: all or nothing, idempotent, every failure visible."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.fhir.importer import bundle_import
from patients.fhir.parse import BundleError
from patients.models import (
    ClinicalNote,
    Condition,
    Encounter,
    ImportBatch,
    Medication,
    Observation,
    Patient,
)
from tests.conftest import SYNTHEA
from tests.patients import bundles
from tests.patients.bundles import bp_index, dumps, load

pytestmark = pytest.mark.django_db


def record_counts() -> dict[str, int]:
    return {
        "Patient": Patient.objects.count(),
        "Encounter": Encounter.objects.count(),
        "Observation": Observation.objects.filter(parent__isnull=True).count(),
        "Condition": Condition.objects.count(),
        "MedicationRequest": Medication.objects.count(),
        "DocumentReference": ClinicalNote.objects.count(),
    }


def json_counts(paths) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for path in paths:
        counts.update(e["resource"]["resourceType"] for e in json.loads(path.read_text())["entry"])
    return {
        t: counts[t]
        for t in (
            "Patient",
            "Encounter",
            "Observation",
            "Condition",
            "MedicationRequest",
            "DocumentReference",
        )
    }


def test_it_imports_every_fixture_bundle_with_counts_equal_to_the_json() -> None:
    for path in SYNTHEA:
        batch = bundle_import(raw=path.read_bytes(), channel="command", filename=path.name)
        assert batch.status == ImportBatch.Status.SUCCEEDED
    assert record_counts() == json_counts(SYNTHEA)


def test_it_changes_nothing_when_the_same_bundle_is_imported_again() -> None:
    raw = SYNTHEA[0].read_bytes()
    bundle_import(raw=raw, channel="command")
    before = {
        m.__name__: list(m.objects.order_by("pk").values())
        for m in (Patient, Observation, Medication, Condition)
    }
    again = bundle_import(raw=raw, channel="command")
    assert again.status == ImportBatch.Status.UNCHANGED
    assert all(
        v["created"] == 0 and v["updated"] == 0 for k, v in again.counts.items() if k != "skipped"
    )
    after = {
        m.__name__: list(m.objects.order_by("pk").values())
        for m in (Patient, Observation, Medication, Condition)
    }
    assert after == before


def test_it_stores_the_bundle_sha256() -> None:
    import hashlib

    raw = SYNTHEA[0].read_bytes()
    assert bundle_import(raw=raw, channel="command").sha256 == hashlib.sha256(raw).hexdigest()


def test_it_updates_a_changed_resource_in_place() -> None:
    b = load()
    bundle_import(raw=dumps(b), channel="command")
    b["entry"][bundles.first_index(b, "Patient")]["resource"]["name"][0]["family"] = "Renamed"
    batch = bundle_import(raw=dumps(b), channel="command")
    assert batch.counts["Patient"]["updated"] == 1
    assert Patient.objects.get().family_name == "Renamed"


@pytest.mark.parametrize(
    "breakage",
    [
        "invalid_json",
        "schema",
        "missing_patient",
        "unknown_unit",
        "impossible_value",
        "future_date",
        "bad_encoding",
    ],
)
def test_a_malformed_bundle_leaves_the_database_unchanged_and_names_the_entry(
    breakage: str,
) -> None:
    bundle_import(raw=SYNTHEA[0].read_bytes(), channel="command")
    before = record_counts()
    b = load()
    i = bp_index(b)
    if breakage == "invalid_json":
        raw = dumps(b)[:-10]
    else:
        if breakage == "schema":
            b["entry"][i]["resource"]["effectiveDateTime"] = {"not": "a date"}
        elif breakage == "missing_patient":
            del b["entry"][bundles.first_index(b, "Patient")]
        elif breakage == "unknown_unit":
            b["entry"][i]["resource"]["component"][0]["valueQuantity"]["code"] = "furlong"
        elif breakage == "impossible_value":
            b["entry"][i]["resource"]["component"][1]["valueQuantity"]["value"] = 900
        elif breakage == "future_date":
            b["entry"][i]["resource"]["effectiveDateTime"] = "2999-01-01T00:00:00+00:00"
        elif breakage == "bad_encoding":
            b = bundles.with_note(b, "Gr\xfc\xdfe".encode("latin-1"))
        raw = dumps(b)
    with pytest.raises(BundleError) as caught:
        bundle_import(raw=raw, channel="api")
    assert record_counts() == before
    failed = ImportBatch.objects.get(status=ImportBatch.Status.FAILED)
    assert failed.errors and failed.errors[0]["message"]
    problem = caught.value.problems[0]
    if breakage not in ("invalid_json", "missing_patient"):
        assert problem.entry is not None and problem.resource_type and problem.field


def test_all_systolic_readings_of_one_patient_are_one_indexed_query() -> None:
    from patients.selectors import observations_for

    patient = bundle_import(raw=SYNTHEA[0].read_bytes(), channel="command").patient
    with CaptureQueriesContext(connection) as ctx:
        readings = list(
            observations_for(patient=patient, code="8480-6").values_list("effective_at", "value")
        )
    assert len(ctx.captured_queries) == 1
    raw = json.loads(SYNTHEA[0].read_text())
    panels = [
        e
        for e in raw["entry"]
        if e["resource"]["resourceType"] == "Observation" and "component" in e["resource"]
    ]
    assert len(readings) == len(panels) > 0
    assert [t for t, _ in readings] == sorted(t for t, _ in readings)
    with connection.cursor() as cursor:
        sql, params = observations_for(patient=patient, code="8480-6").query.sql_with_params()
        cursor.execute("ANALYZE patients_observation")
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "obs_patient_code_time_idx" in plan


def test_the_import_command_prints_a_summary_table_and_fails_on_a_bad_bundle(tmp_path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(SYNTHEA[0].read_bytes())
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [}')
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Exception, match="1 bundle\\(s\\) failed"):
        call_command("import_fhir", str(tmp_path), "--no-progress", stdout=out, stderr=err)
    assert "Observation" in out.getvalue() and "1 imported" in out.getvalue()
    assert (
        "bad.json: nothing imported" in err.getvalue()
        and "invalid JSON at line 1" in err.getvalue()
    )
    assert Patient.objects.count() == 1


def test_a_signed_note_cannot_be_changed_by_a_later_bundle() -> None:
    b = bundles.with_note(load(), b"Original text.")
    bundle_import(raw=dumps(b), channel="command")
    changed = bundles.with_note(load(), b"Rewritten text.")
    with pytest.raises(BundleError, match="signed note"):
        bundle_import(raw=dumps(changed), channel="command")
    assert ClinicalNote.objects.get().text == "Original text."


def test_the_parsers_length_limits_are_the_columns_widths() -> None:
    from patients.fhir.parse import FIELD_LIMITS

    models_by_type = {
        "Patient": Patient,
        "Encounter": Encounter,
        "Observation": Observation,
        "Condition": Condition,
        "MedicationRequest": Medication,
        "DocumentReference": ClinicalNote,
    }
    for rtype, limits in FIELD_LIMITS.items():
        model = models_by_type[rtype]
        for attr, (limit, _path) in limits.items():
            assert model._meta.get_field(attr).max_length == limit, (rtype, attr)
        # every other bounded column holds a value the parser chooses from a fixed set
        bounded = {
            f.name
            for f in model._meta.get_fields()
            if getattr(f, "max_length", None) and f.get_internal_type() == "CharField"
        }
        assert bounded - set(limits) <= {"sex", "source", "treatment_class", "statin_intensity"} | {
            "status"
        }, rtype


def test_long_descriptions_import_and_an_over_long_code_is_refused_by_entry() -> None:
    b = load()
    i = bp_index(b)
    b["entry"][i]["resource"]["code"]["text"] = "a very long description " * 30
    b["entry"][i]["resource"]["code"]["coding"][0]["display"] = "long display " * 40
    bundle_import(raw=dumps(b), channel=ImportBatch.Channel.COMMAND)
    obs = Observation.objects.get(fhir_id=b["entry"][i]["resource"]["id"])
    assert len(obs.display) > 255

    before = record_counts()
    bad = load()
    bad["entry"][i]["resource"]["code"]["coding"][0]["code"] = "X" * 30
    with pytest.raises(BundleError) as caught:
        bundle_import(raw=dumps(bad), channel=ImportBatch.Channel.COMMAND)
    assert str(caught.value.problems[0]).startswith(
        f"entry {i} (Observation), field code.coding[0].code:"
    )
    assert "longer than 20 characters" in str(caught.value)
    assert record_counts() == before
