"""POST /api/v1/devices/readings/: what is stored, what is refused, and what is answered."""

from __future__ import annotations

import datetime as dt

import pytest

from patients import coding
from patients.models import Observation
from tests.devices.conftest import READINGS_URL, ago, bp, device, send

pytestmark = pytest.mark.django_db


def test_it_stores_a_blood_pressure_as_a_panel_with_two_component_rows(cuff, patient) -> None:
    response = send(cuff.secret, [bp("omron-1", systolic=141, diastolic=88)])

    assert response.status_code == 201
    assert response.json() == {
        "accepted": 1,
        "duplicate": 0,
        "rejected": 0,
        "results": [{"index": 0, "id": "omron-1", "status": "accepted"}],
    }
    panel = Observation.objects.get(parent__isnull=True)
    assert panel.code in coding.BP_PANEL_CODES and panel.value is None
    assert (panel.patient, panel.source, panel.category) == (patient, "home_device", "vital-signs")
    sbp, dbp = panel.components.order_by("component_index")
    assert (sbp.code, sbp.value, sbp.unit, sbp.component_index) == (
        coding.SBP_CODE,
        141,
        "mm[Hg]",
        0,
    )
    assert (dbp.code, dbp.value, dbp.unit, dbp.component_index) == (
        coding.DBP_CODE,
        88,
        "mm[Hg]",
        1,
    )
    assert (sbp.fhir_id, dbp.fhir_id) == (f"{panel.fhir_id}#0", f"{panel.fhir_id}#1")
    for row in (sbp, dbp):
        assert (row.patient, row.source, row.effective_at) == (
            patient,
            "home_device",
            panel.effective_at,
        )


def test_device_readings_are_stored_like_an_imported_panel(imported, issue) -> None:
    """The twin reads both the same way: same panel and component layout, same columns filled."""
    patient = imported[0]
    imported_panel = Observation.objects.filter(
        patient=patient, code__in=coding.BP_PANEL_CODES
    ).first()
    assert imported_panel is not None
    token = issue("bp_cuff", patient=patient)
    send(token.secret, [bp("omron-1")])
    device_panel = Observation.objects.get(patient=patient, source="home_device", parent=None)

    def layout(panel: Observation) -> tuple:
        # Synthea writes the diastolic component first, the cohort generator the systolic
        components = panel.components.all()
        return (
            (panel.value, panel.unit, panel.component_index),
            sorted(
                (c.code, c.unit, c.value is None, c.effective_at == panel.effective_at)
                for c in components
            ),
            sorted(c.component_index for c in components),
            sorted(c.fhir_id.removeprefix(panel.fhir_id) for c in components),
        )

    assert layout(device_panel) == layout(imported_panel)
    systolic_times = Observation.objects.filter(patient=patient, code=coding.SBP_CODE).values_list(
        "effective_at", flat=True
    )
    assert device_panel.effective_at in set(systolic_times)


def test_it_converts_glucose_in_mmol_per_litre_to_mg_per_decilitre(issue) -> None:
    meter = issue("glucose_meter")
    reading = {
        "id": "g1",
        "type": "glucose",
        "time": ago(minutes=5),
        "value": 5.5,
        "unit": "mmol/L",
    }

    assert send(meter.secret, [reading]).status_code == 201

    row = Observation.objects.get()
    assert (row.code, row.category, row.unit) == ("2339-0", "laboratory", "mg/dL")
    assert row.value == pytest.approx(5.5 * 18.016)
    assert (row.original_value, row.original_unit) == (5.5, "mmol/L")


def test_it_keeps_an_implausible_weight_and_flags_it(issue) -> None:
    scale = issue("scale")
    reading = {"id": "w1", "type": "weight", "time": ago(hours=2), "value": 20, "unit": "kg"}

    assert send(scale.secret, [reading]).json()["accepted"] == 1

    row = Observation.objects.get()
    assert (row.code, row.value, row.implausible) == ("29463-7", 20.0, True)
    assert row.implausible_reason == "body weight 20 kg is below the plausible range 25-300 kg"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"unit": "cmH2O"}, "unit", "unknown unit"),
        ({"systolic": 400}, "systolic", "impossible value"),
        ({"time": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()}, "time", "future"),
        ({"time": "2026-11-30T08:15:00"}, "time", "no timezone"),
        ({"type": "heart_rate"}, "type", "is not one of blood_pressure, weight, glucose"),
        ({"type": "weight", "value": 80, "unit": "kg"}, "type", "may not send weight"),
        ({"time": None}, "time", "is required"),
    ],
)
def test_it_rejects_a_bad_reading_with_the_field_and_reason_and_stores_the_rest(
    cuff, change, field, reason
) -> None:
    good = bp("good")
    bad = {k: v for k, v in bp("bad", **change).items() if v is not None}

    response = send(cuff.secret, [good, bad])

    assert response.status_code == 201
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    outcome = body["results"][1]
    assert (outcome["index"], outcome["id"], outcome["status"], outcome["field"]) == (
        1,
        "bad",
        "rejected",
        field,
    )
    assert reason in outcome["reason"]
    assert Observation.objects.filter(parent=None).count() == 1


def test_a_batch_of_rejected_readings_is_answered_200_and_stores_nothing(cuff) -> None:
    response = send(cuff.secret, [bp("a", unit="kPa"), bp("b", systolic=1000)])

    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "rejected"]
    assert not Observation.objects.exists()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", {"index": None, "field": "(body)"}),
        (b'["a list"]', {"index": None, "field": "(body)"}),
        (b'{"data": []}', {"index": None, "field": "readings"}),
        (b'{"readings": {"id": "r1"}}', {"index": None, "field": "readings"}),
        (b'{"readings": "r1"}', {"index": None, "field": "readings"}),
    ],
)
def test_a_malformed_batch_is_refused_whole_and_writes_nothing(cuff, body, problem) -> None:
    before = Observation.objects.count()

    response = device(cuff.secret).post(READINGS_URL, body, content_type="application/json")

    assert response.status_code == 400
    problems = response.json()["problems"]
    assert len(problems) == 1 and {k: problems[0][k] for k in problem} == problem
    assert problems[0]["message"]
    assert Observation.objects.count() == before


def test_a_batch_with_readings_that_are_not_objects_lists_each_and_writes_nothing(cuff) -> None:
    response = send(cuff.secret, [bp("a"), "b", bp("c"), 42])

    assert response.status_code == 400
    assert response.json()["detail"] == "The batch was not accepted; nothing was written."
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [
        (1, "(reading)"),
        (3, "(reading)"),
    ]
    assert not Observation.objects.exists()


def test_a_batch_over_the_maximum_size_is_refused(cuff) -> None:
    response = send(cuff.secret, [bp(f"r{i}") for i in range(5001)])

    assert response.status_code == 400
    assert "at most 5000" in response.json()["problems"][0]["message"]
    assert not Observation.objects.exists()


def test_a_resent_batch_is_answered_duplicate_and_stored_once(cuff) -> None:
    batch = [bp("r1"), bp("r2", systolic=150)]
    assert send(cuff.secret, batch).status_code == 201
    rows = Observation.objects.count()

    again = send(cuff.secret, batch)

    assert again.status_code == 200
    assert again.json()["duplicate"] == 2
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert Observation.objects.count() == rows == 6


def test_duplicates_within_one_batch_are_stored_once(cuff) -> None:
    same = bp("r1")
    copy_with_another_id = {**same, "id": "r1-copy"}
    other_values_same_id = {**same, "systolic": 150}

    response = send(cuff.secret, [same, same, copy_with_another_id, other_values_same_id])

    assert [r["status"] for r in response.json()["results"]] == [
        "accepted",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert Observation.objects.filter(parent=None).count() == 1


def test_a_reading_already_in_the_record_from_an_import_is_a_duplicate(imported, issue) -> None:
    patient = imported[0]
    systolic = Observation.objects.filter(patient=patient, code=coding.SBP_CODE).first()
    diastolic = Observation.objects.get(parent=systolic.parent, code=coding.DBP_CODE)
    token = issue("bp_cuff", patient=patient)
    before = Observation.objects.count()

    response = send(
        token.secret,
        [
            bp(
                "same-as-clinic",
                systolic=systolic.value,
                diastolic=diastolic.value,
                time=systolic.effective_at.isoformat(),
            )
        ],
    )

    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "duplicate"
    assert Observation.objects.count() == before


def test_a_new_token_for_the_same_device_does_not_store_its_readings_again(cuff, issue) -> None:
    reading = bp("r1")
    send(cuff.secret, [reading])
    replacement = issue("bp_cuff")

    response = send(replacement.secret, [reading])

    assert response.json()["results"][0]["status"] == "duplicate"
    assert Observation.objects.filter(parent=None).count() == 1


def test_an_accepted_batch_asks_once_for_the_patients_twin_to_recalibrate(cuff, patient) -> None:
    from twins.models import PendingRecalibration

    send(cuff.secret, [bp("r1"), bp("r2", systolic=150), bp("r3", systolic=160)])

    pending = PendingRecalibration.objects.get()
    assert (pending.patient, pending.reason, pending.requests) == (patient, "device", 1)


def test_a_batch_that_stores_nothing_asks_for_no_recalibration(cuff) -> None:
    from twins.models import PendingRecalibration

    send(cuff.secret, [bp("r1", unit="kPa")])

    assert not PendingRecalibration.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_reading_sent_twice_at_once_is_stored_once(cuff, monkeypatch) -> None:
    import threading

    from django.db import connection

    # These transactions really commit: keep the twin's Celery message out of the shared queues.
    monkeypatch.setattr("devices.services.twin_recalibration_request", lambda **kwargs: None)
    start = threading.Barrier(2)
    answers: list[str] = []

    def post() -> None:
        try:
            start.wait()
            answers.append(send(cuff.secret, [bp("same")]).json()["results"][0]["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(answers) == ["accepted", "duplicate"]
    assert Observation.objects.filter(parent=None).count() == 1


def test_device_readings_export_to_fhir_and_import_back_unchanged(imported, issue) -> None:
    import json

    from patients.fhir.exporter import patient_bundle
    from patients.fhir.importer import bundle_import

    patient = imported[0]
    cuff, meter = issue("bp_cuff", patient=patient), issue("glucose_meter", patient=patient)
    send(cuff.secret, [bp("a"), bp("b", systolic=150, unit="mmHg")])
    glucose = {"id": "g", "type": "glucose", "time": ago(hours=3), "value": 6.1, "unit": "mmol/L"}
    send(meter.secret, [glucose])
    stored = list(Observation.objects.filter(source="home_device").order_by("fhir_id").values())
    assert len(stored) == 7

    batch = bundle_import(raw=json.dumps(patient_bundle(patient)).encode(), channel="command")

    assert batch.status == "unchanged"
    assert (
        list(Observation.objects.filter(source="home_device").order_by("fhir_id").values())
        == stored
    )
