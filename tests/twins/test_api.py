"""The twin's REST API: scoped to the care team, stale snapshots say so, alerts acknowledged with a
reason, what-if plans validated before anything is queued."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import Patient
from twins import services
from twins.models import TwinAlert, TwinSnapshot, WhatIfRun


@pytest.fixture
def api(clinician: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(clinician)
    return client


@pytest.mark.django_db
def test_the_latest_snapshot_comes_with_its_status_and_bands(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    patient = imported[0]
    before = api.get(f"/api/v1/patients/{patient.pk}/twin/").json()
    assert before["snapshot"] is None and before["status"]["state"] == "none"
    assert before["status"]["recalibration_pending"] is True  # the import asked for one

    services.snapshots_compute(patient_ids=[patient.pk])
    body = api.get(f"/api/v1/patients/{patient.pk}/twin/").json()
    assert body["status"]["state"] == "current"
    snap = body["snapshot"]
    assert len(snap["t_years"]) == 121 and snap["t_years"][12] == pytest.approx(1.0)
    sbp = snap["variables"]["sbp"]
    assert sbp["unit"] == "mm[Hg]" and len(sbp["median"]) == 121
    assert all(
        lo <= m <= hi for lo, m, hi in zip(sbp["lo95"], sbp["median"], sbp["hi95"], strict=True)
    )
    assert snap["model_version"] and len(snap["inputs_sha256"]) == 64

    services.twin_recalibration_request(patient_ids=[patient.pk], reason="device")
    stale = api.get(f"/api/v1/patients/{patient.pk}/twin/").json()
    assert stale["status"]["state"] == "stale" and stale["status"]["stale_since"]
    assert stale["snapshot"]["id"] == snap["id"]  # the last snapshot is still served


@pytest.mark.django_db
def test_every_twin_endpoint_is_a_404_outside_the_care_team(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    outsider = imported[2]  # alive, on no team of the clinician's
    services.snapshots_compute(patient_ids=[outsider.pk])
    snapshot = TwinSnapshot.objects.get(patient=outsider)
    for url in (
        f"/api/v1/patients/{outsider.pk}/twin/",
        f"/api/v1/patients/{outsider.pk}/twin/snapshots/",
        f"/api/v1/patients/{outsider.pk}/twin/snapshots/{snapshot.pk}/",
    ):
        assert api.get(url).status_code == 404, url
    alert = TwinAlert.objects.create(
        patient=outsider,
        kind=TwinAlert.Kind.RISK,
        dedupe_key="risk:outsider",
        snapshot=snapshot,
        message="x",
        evidence={},
        created_at=timezone.now(),
    )
    assert api.get("/api/v1/alerts/").json()["count"] == 0
    refused = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"reason": "seen"})
    assert refused.status_code == 404


@pytest.mark.django_db
def test_snapshots_are_listed_newest_first_and_alerts_acknowledged_with_a_reason(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    patient = imported[0]
    t0 = timezone.now() - dt.timedelta(days=2)
    services.snapshots_compute(patient_ids=[patient.pk], now=t0)
    services.snapshots_compute(patient_ids=[patient.pk], now=t0 + dt.timedelta(days=1), force=True)
    listed = api.get(f"/api/v1/patients/{patient.pk}/twin/snapshots/").json()
    assert listed["count"] == 2
    assert listed["results"][0]["computed_at"] > listed["results"][1]["computed_at"]
    assert "bands" not in listed["results"][0]

    alert = TwinAlert.objects.create(
        patient=patient,
        kind=TwinAlert.Kind.RISK,
        dedupe_key="risk:mine",
        snapshot=TwinSnapshot.objects.filter(patient=patient).first(),
        message="10-year ASCVD risk to 21.0%",
        evidence={"risk": 0.21},
        created_at=timezone.now(),
    )
    assert api.get("/api/v1/alerts/").json()["count"] == 1
    empty = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"reason": " "}, format="json")
    assert empty.status_code == 400 and "reason" in empty.json()
    done = api.post(
        f"/api/v1/alerts/{alert.pk}/acknowledge/", {"reason": "Statin discussed"}, format="json"
    )
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "ana.gp"
    assert api.get("/api/v1/alerts/").json()["count"] == 0
    assert api.get("/api/v1/alerts/?state=all").json()["count"] == 1
    again = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"reason": "twice"}, format="json")
    assert again.status_code == 400


@pytest.mark.django_db
def test_bad_plans_are_refused_with_every_problem_and_nothing_queued(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    patient = imported[0]
    today = timezone.now().date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    plans = [
        {"name": "past", "items": [{"intervention": "statin", "start": yesterday}]},
        {"name": "unknown", "items": [{"intervention": "homeopathy", "start": today.isoformat()}]},
        {"name": "empty", "items": []},
    ]
    response = api.post(f"/api/v1/patients/{patient.pk}/whatif/", {"plans": plans}, format="json")
    assert response.status_code == 400
    fields = {p["field"] for p in response.json()["problems"]}
    assert {"plans.past[0].start", "plans.unknown[0]", "plans.empty"} <= fields
    seven = [
        {"name": f"plan {k}", "items": [{"intervention": "statin", "start": today.isoformat()}]}
        for k in range(7)
    ]
    too_many = api.post(f"/api/v1/patients/{patient.pk}/whatif/", {"plans": seven}, format="json")
    assert too_many.status_code == 400
    assert not WhatIfRun.objects.exists()


@pytest.mark.django_db
def test_the_schema_documents_the_twin_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/?format=json").json()
    for path in (
        "/api/v1/patients/{patient_id}/twin/",
        "/api/v1/patients/{patient_id}/twin/snapshots/",
        "/api/v1/patients/{patient_id}/whatif/",
        "/api/v1/whatif/{run_id}/",
        "/api/v1/alerts/",
        "/api/v1/alerts/{alert_id}/acknowledge/",
    ):
        assert path in schema["paths"], path


@pytest.mark.django_db
def test_a_plan_stopping_a_current_drug_class_runs_beside_the_others(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    from models_engine.treatments import STOP_SOURCE

    patient = imported[0]  # takes hydrochlorothiazide
    today = timezone.now().date().isoformat()
    plans = [
        {"name": "add ARB", "items": [{"intervention": "arb", "start": today}]},
        {
            "name": "stop thiazide",
            "items": [{"action": "stop", "intervention": "thiazide", "start": today}],
        },
    ]
    response = api.post(f"/api/v1/patients/{patient.pk}/whatif/", {"plans": plans}, format="json")
    assert response.status_code == 202, response.json()
    run = services.whatif_execute(run_id=response.json()["id"])
    body = api.get(f"/api/v1/whatif/{run.pk}/").json()
    outcomes = body["result"]["outcomes"]
    assert set(outcomes) == {"current care", "add ARB", "stop thiazide"}
    stopped = outcomes["stop thiazide"]
    assert stopped["plan"][0]["action"] == "stop"
    assert STOP_SOURCE in stopped["sources"]["thiazide"]
    sbp = {k: o["sbp_1y"][0] for k, o in outcomes.items()}
    assert sbp["add ARB"] < sbp["current care"] < sbp["stop thiazide"]


@pytest.mark.django_db
def test_stopping_a_class_the_patient_does_not_take_is_refused(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    today = timezone.now().date().isoformat()
    plans = [
        {
            "name": "stop",
            "items": [{"action": "stop", "intervention": "metformin", "start": today}],
        },
        {
            "name": "stop at 2x",
            "items": [{"action": "stop", "intervention": "thiazide", "start": today, "dose": 2}],
        },
    ]
    response = api.post(
        f"/api/v1/patients/{imported[0].pk}/whatif/", {"plans": plans}, format="json"
    )
    assert response.status_code == 400
    assert {p["field"] for p in response.json()["problems"]} == {
        "plans.stop[0].intervention",
        "plans.stop at 2x[0]",
    }
    assert not WhatIfRun.objects.exists()
