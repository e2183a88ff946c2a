"""The twin kept current by real Celery workers against the real Redis and PostgreSQL: new data
leads to a new snapshot, nightly runs complete exactly once per patient even when a worker is
killed mid-chunk, and what-ifs run on the interactive queue."""

from __future__ import annotations

import copy
import datetime as dt
import io
import time
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from patients.fhir.importer import bundle_import
from patients.models import Patient
from tests.patients import bundles
from tests.twins.conftest import wait_for
from twins import services
from twins.models import (
    PendingRecalibration,
    RecomputeChunk,
    RecomputeRun,
    TaskState,
    TwinAlert,
    TwinSnapshot,
    TwinState,
    WhatIfRun,
)


def with_weight(bundle: dict[str, Any], kg: float, when: dt.datetime) -> dict[str, Any]:
    """The bundle plus one more body-weight reading."""
    b = copy.deepcopy(bundle)
    entry = copy.deepcopy(b["entry"][bundles.weight_index(b)])
    new_id = str(uuid.uuid4())
    entry["fullUrl"] = f"urn:uuid:{new_id}"
    entry["resource"]["id"] = new_id
    entry["resource"]["effectiveDateTime"] = when.isoformat()
    entry["resource"]["issued"] = when.isoformat()
    entry["resource"]["valueQuantity"]["value"] = kg
    entry["resource"].pop("encounter", None)
    b["entry"].append(entry)
    return b


@pytest.mark.django_db(transaction=True)
def test_an_import_gets_a_snapshot_and_a_new_reading_a_new_one_with_a_drift_alert(
    celery_worker: object, quick_twin: dict[str, int]
) -> None:
    bundle = bundles.load()
    batch = bundle_import(raw=bundles.dumps(bundle), channel="api")
    patient = batch.patient
    wait_for(lambda: TwinSnapshot.objects.filter(patient=patient).exists(), what="a snapshot")
    first = TwinSnapshot.objects.get(patient=patient)
    assert first.trigger == "import" and first.task_id
    state = TwinState.objects.get(patient=patient)
    assert state.latest_id == first.pk and not PendingRecalibration.objects.exists()

    time.sleep(1.0)
    usual = first.band_array()[first.variables.index("weight"), 0, 0]
    bundle_import(
        raw=bundles.dumps(with_weight(bundle, usual + 45.0, timezone.now())), channel="api"
    )
    wait_for(
        lambda: TwinSnapshot.objects.filter(patient=patient).count() == 2, what="a new snapshot"
    )
    alert = TwinAlert.objects.get(patient=patient, kind=TwinAlert.Kind.DRIFT)
    assert alert.variable == "weight" and alert.snapshot_id == first.pk
    assert alert.evidence["value"] > alert.evidence["band95"][1]
    assert "above the forecast's 95 % band" in alert.message
    # older snapshots are kept: what the twin predicted then stays readable
    assert TwinSnapshot.objects.filter(pk=first.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_fifty_readings_causes_one_recalibration(
    celery_worker: object, settings: Any, imported: list[Patient]
) -> None:
    settings.TWINPORTAL_TWIN = {**settings.TWINPORTAL_TWIN, "quiet_seconds": 2}
    patient = imported[0]
    for _ in range(50):
        with transaction.atomic():
            services.twin_recalibration_request(patient_ids=[patient.pk], reason="device")
    pending = PendingRecalibration.objects.get(patient=patient)
    assert pending.requests == 1 + 50  # the import's request, then the burst
    wait_for(lambda: TwinSnapshot.objects.filter(patient=patient).exists(), what="the fit")
    wait_for(lambda: not PendingRecalibration.objects.exists(), what="the request to close")
    time.sleep(3.0)  # any second fit would have run by now
    assert TwinSnapshot.objects.filter(patient=patient).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_nightly_run_fans_out_chunks_and_running_it_again_writes_nothing_twice(
    celery_worker: object, imported: list[Patient]
) -> None:
    alive = list(Patient.objects.filter(deceased_at__isnull=True))
    assert 0 < len(alive) < len(imported)  # the fixtures include a patient who has died
    run = services.recompute_run_start(chunk_size=2)
    assert run.patients_total == len(alive) and run.chunks.count() == 2
    wait_for(lambda: RecomputeRun.objects.get(pk=run.pk).finished_at is not None, what="the run")
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert run.patients_done == len(alive) and run.patients_failed == 0
    assert TwinSnapshot.objects.filter(run=run).count() == len(alive)

    again = services.recompute_run_start(chunk_size=2)
    assert again.patients_total == 0 and again.status == RecomputeRun.Status.SUCCEEDED
    forced = services.recompute_run_start(
        chunk_size=2, patient_ids=[p.pk for p in alive], kind=RecomputeRun.Kind.MANUAL
    )
    wait_for(lambda: RecomputeRun.objects.get(pk=forced.pk).finished_at is not None)
    forced.refresh_from_db()
    assert forced.patients_skipped == len(alive) and forced.patients_done == 0
    assert TwinSnapshot.objects.count() == len(alive)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_chunk_leaves_a_run_that_still_completes_exactly_once(
    worker_process: Any,
) -> None:
    call_command("generate_cohort", "--patients", "160", "--workers", "1", "--no-progress")
    ids = list(Patient.objects.values_list("pk", flat=True))
    first = worker_process(TWINPORTAL_VISIBILITY_TIMEOUT_SECONDS="5")
    run = services.recompute_run_start(chunk_size=80)
    wait_for(
        lambda: RecomputeChunk.objects.filter(run=run, status=TaskState.RUNNING).exists(),
        what="a chunk to start",
    )
    first.kill()
    killed = RecomputeChunk.objects.get(run=run, status=TaskState.RUNNING)
    assert not TwinSnapshot.objects.filter(run=run, patient_id__in=killed.patient_ids).exists()

    worker_process(TWINPORTAL_VISIBILITY_TIMEOUT_SECONDS="5")
    # the sweeper (beat, every minute) finds the chunk whose lease ran out and queues it again
    later = timezone.now() + dt.timedelta(seconds=services.twin_config().lease_seconds + 1)
    services.twin_sweep(now=later)
    wait_for(
        lambda: RecomputeRun.objects.get(pk=run.pk).finished_at is not None,
        timeout=240,
        what="the run to complete",
    )
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.SUCCEEDED
    assert run.patients_done == len(ids) and run.patients_failed == 0
    per_patient = TwinSnapshot.objects.filter(run=run).values_list("patient_id", flat=True)
    assert sorted(per_patient) == sorted(ids)
    killed.refresh_from_db()
    assert killed.status == TaskState.SUCCEEDED and killed.attempts >= 2
    time.sleep(6.0)  # the killed worker's message comes back after the visibility timeout
    assert TwinSnapshot.objects.filter(run=run).count() == len(ids)


@pytest.mark.django_db(transaction=True)
def test_a_whatif_posted_through_the_api_runs_on_the_worker(
    celery_worker: object, clinician: Any, care_team: Any, imported: list[Patient]
) -> None:
    client = APIClient()
    client.force_authenticate(clinician)
    start = (timezone.now().date() + dt.timedelta(days=7)).isoformat()
    response = client.post(
        f"/api/v1/patients/{imported[0].pk}/whatif/",
        {
            "name": "BP options",
            "plans": [
                {
                    "name": "ACE inhibitor",
                    "items": [{"intervention": "ace_inhibitor", "start": start}],
                },
                {
                    "name": "Statin and metformin",
                    "items": [
                        {"intervention": "statin", "start": start, "intensity": "moderate"},
                        {"intervention": "metformin", "start": start},
                    ],
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    wait_for(
        lambda: WhatIfRun.objects.get(pk=run_id).status == TaskState.SUCCEEDED, what="the what-if"
    )
    body = client.get(f"/api/v1/whatif/{run_id}/").json()
    outcomes = body["result"]["outcomes"]
    assert set(outcomes) == {"current care", "ACE inhibitor", "Statin and metformin"}
    assert outcomes["ACE inhibitor"]["sbp_1y"][0] < outcomes["current care"]["sbp_1y"][0]

    other = client.get(f"/api/v1/whatif/{run_id}/")
    assert other.status_code == 200
    outsider = imported[3]
    refused = client.post(
        f"/api/v1/patients/{outsider.pk}/whatif/",
        {"plans": [{"name": "x", "items": [{"intervention": "statin", "start": start}]}]},
        format="json",
    )
    assert refused.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_import_command_leaves_each_patient_a_snapshot_and_its_risk_alerts(
    celery_worker: object, quick_twin: dict[str, int]
) -> None:
    from tests.conftest import FIXTURES

    call_command("import_fhir", str(FIXTURES / "synthea"), stdout=io.StringIO())
    living = list(Patient.objects.filter(deceased_at__isnull=True))
    wait_for(
        lambda: TwinSnapshot.objects.filter(patient__in=living).count() == len(living),
        what="a snapshot for each imported patient",
    )
    raised = 0
    for patient in living:
        snapshot = TwinSnapshot.objects.get(patient=patient)
        ascvd = (snapshot.risk or {}).get("ten_year", {}).get("ascvd")
        alerts = TwinAlert.objects.filter(patient=patient, kind=TwinAlert.Kind.RISK)
        assert alerts.exists() == (ascvd is not None and ascvd >= 0.075), patient
        for alert in alerts:
            assert alert.snapshot_id == snapshot.pk
            assert alert.evidence["risk"] == pytest.approx(ascvd)
            raised += 1
    assert raised >= 1  # the fixtures include a patient above the intermediate threshold
