"""The twin's services without a worker: debounce, alerts, staleness, failures, chunk bookkeeping."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients.models import Observation, Patient
from twins import services
from twins.models import (
    PendingRecalibration,
    RecomputeChunk,
    RecomputeRun,
    TaskState,
    TwinAlert,
    TwinSnapshot,
    TwinState,
)

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_it_defers_a_recalibration_while_readings_keep_coming(imported: list[Patient]) -> None:
    patient = imported[0]
    PendingRecalibration.objects.all().delete()
    cfg = services.twin_config()
    services.twin_recalibration_request(patient_ids=[patient.pk], reason="device", now=T0)
    later = T0 + dt.timedelta(seconds=cfg.quiet_seconds - 1)
    services.twin_recalibration_request(patient_ids=[patient.pk], reason="device", now=later)
    early = services.twin_recalibrate(
        patient_id=patient.pk, now=T0 + dt.timedelta(seconds=cfg.quiet_seconds)
    )
    assert early.deferred_seconds == pytest.approx(cfg.quiet_seconds - 1)
    assert not TwinSnapshot.objects.exists()
    # however long the stream, it never waits more than max_wait after the first request
    pending = PendingRecalibration.objects.get(patient=patient)
    pending.due_at = T0 + dt.timedelta(days=1)
    pending.save()
    capped = services.twin_recalibrate(
        patient_id=patient.pk, now=T0 + dt.timedelta(seconds=cfg.max_wait_seconds + 1)
    )
    assert capped.deferred_seconds == 0 and capped.counts and capped.counts.done == 1
    assert not PendingRecalibration.objects.filter(patient=patient).exists()
    nothing = services.twin_recalibrate(patient_id=patient.pk)
    assert nothing.counts is None and nothing.deferred_seconds == 0


@pytest.mark.django_db
def test_a_reading_inside_the_band_raises_no_alert_and_one_outside_raises_one_once(
    imported: list[Patient],
) -> None:
    patient = imported[1]
    services.snapshots_compute(patient_ids=[patient.pk], now=T0)
    first = TwinSnapshot.objects.get(patient=patient)
    sbp = first.band_array()[first.variables.index("sbp")]
    at = T0 + dt.timedelta(days=61)
    k = 2  # the grid point two months on
    for value in (float(sbp[0, k]), float(sbp[4, k]) + 25.0):
        Observation.objects.create(
            patient=patient, code="8480-6", value=value, unit="mm[Hg]", effective_at=at
        )
        at += dt.timedelta(minutes=1)
    services.snapshots_compute(patient_ids=[patient.pk], now=T0 + dt.timedelta(days=62))
    alerts = TwinAlert.objects.filter(patient=patient, kind=TwinAlert.Kind.DRIFT)
    assert alerts.count() == 1
    alert = alerts.get()
    assert alert.evidence["value"] == pytest.approx(float(sbp[4, k]) + 25.0)
    assert alert.evidence["forecast_snapshot_id"] == first.pk
    # the same reading is never alerted twice, whatever runs again
    services.snapshots_compute(patient_ids=[patient.pk], now=T0 + dt.timedelta(days=63), force=True)
    assert TwinAlert.objects.filter(patient=patient, kind=TwinAlert.Kind.DRIFT).count() == 1


def _with_risk(snapshot: TwinSnapshot, ascvd: float | None) -> TwinSnapshot:
    snapshot.risk = {"ten_year": {"ascvd": ascvd}, "thirty_year": {}, "inputs": {"age": 60}}
    return snapshot


@pytest.mark.django_db
def test_a_risk_alert_marks_the_highest_threshold_crossed_and_only_a_crossing(
    imported: list[Patient],
) -> None:
    patient = imported[0]
    services.snapshots_compute(patient_ids=[patient.pk], now=T0)
    prev = _with_risk(TwinSnapshot.objects.get(patient=patient), 0.06)
    prev.save()
    new = _with_risk(TwinSnapshot.objects.get(patient=patient), 0.23)
    new.pk = None
    alert = services._risk_alert(new, prev, T0)
    assert alert is not None and alert.evidence["threshold"] == 0.20
    assert "6.0% to 23.0%" in alert.message and "Grundy" in alert.evidence["threshold_source"]
    same_band = _with_risk(TwinSnapshot.objects.get(patient=patient), 0.22)
    assert services._risk_alert(same_band, new, T0) is None
    unknown = _with_risk(TwinSnapshot.objects.get(patient=patient), None)
    assert services._risk_alert(unknown, prev, T0) is None


@pytest.mark.django_db
def test_an_acknowledgement_needs_a_reason_and_the_database_insists(
    imported: list[Patient], clinician: Any
) -> None:
    patient = imported[0]
    services.snapshots_compute(patient_ids=[patient.pk], now=T0)
    snapshot = TwinSnapshot.objects.get(patient=patient)
    alert = TwinAlert.objects.create(
        patient=patient,
        kind=TwinAlert.Kind.RISK,
        dedupe_key="risk:test",
        snapshot=snapshot,
        message="10-year ASCVD risk to 21%",
        evidence={},
        created_at=T0,
    )
    with pytest.raises(ValueError, match="reason"):
        services.alert_acknowledge(alert=alert, user=clinician, reason="   ")
    services.alert_acknowledge(alert=alert, user=clinician, reason="Statin started today")
    with pytest.raises(ValueError, match="already"):
        services.alert_acknowledge(alert=alert, user=clinician, reason="again")
    with pytest.raises(IntegrityError), transaction.atomic():
        TwinAlert.objects.filter(pk=alert.pk).update(acknowledged_reason="")


@pytest.mark.django_db
def test_the_status_says_since_when_a_snapshot_is_stale(imported: list[Patient]) -> None:
    patient = imported[0]
    fitted = timezone.now()  # after the import's change
    services.snapshots_compute(patient_ids=[patient.pk], now=fitted)
    now = fitted + dt.timedelta(hours=2)
    state = TwinState.objects.select_related("latest").get(patient=patient)
    assert services.twin_status(state, now=now)["state"] == "current"
    services.twin_recalibration_request(patient_ids=[patient.pk], reason="device", now=now)
    state.refresh_from_db()
    status = services.twin_status(state, now=now)
    assert status["state"] == "stale" and status["stale_since"] == now
    assert str(status["message"]).startswith("Recomputation is delayed; showing results from")
    old = services.twin_status(state, now=now + dt.timedelta(days=30))
    assert "older than" in str(old["message"])


@pytest.mark.django_db
def test_a_patient_whose_fit_fails_is_recorded_as_failed_and_the_rest_are_stored(
    imported: list[Patient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from models_engine import snapshot as engine

    real = engine.snapshot_batch
    bad = str(imported[0].pk)

    def failing(histories: list[Any], **kwargs: Any) -> Any:
        if any(h.patient_id == bad for h in histories):
            raise FloatingPointError("singular covariance")
        return real(histories, **kwargs)

    monkeypatch.setattr(services, "snapshot_batch", failing)
    counts = services.snapshots_compute(patient_ids=[p.pk for p in imported[:3]])
    assert counts.failed == 1 and counts.done == 2
    state = TwinState.objects.get(patient=imported[0])
    assert state.failed_at is not None and "singular covariance" in state.last_error
    assert services.twin_status(state)["state"] == "failed"


@pytest.mark.django_db
def test_a_chunk_that_keeps_failing_closes_its_run_with_failures(imported: list[Patient]) -> None:
    run = services.recompute_run_start(chunk_size=2, patient_ids=[p.pk for p in imported[:3]])
    first, second = RecomputeChunk.objects.filter(run=run).order_by("index")
    services.recompute_chunk_execute(chunk_id=first.pk)
    services.recompute_chunk_fail(chunk_id=second.pk, error="OperationalError: server closed")
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.COMPLETED_WITH_FAILURES
    assert run.patients_done + run.patients_skipped == 2 and run.patients_failed == 1
    assert run.finished_at is not None and run.errors[0]["error"].startswith("OperationalError")
    second.refresh_from_db()
    assert second.status == TaskState.FAILED
    # a message for the chunk that arrives later changes nothing
    assert services.recompute_chunk_execute(chunk_id=second.pk).already_done
    assert services.recompute_chunk_execute(chunk_id=first.pk).already_done


@pytest.mark.django_db
def test_the_sweeper_queues_only_what_has_no_live_message(imported: list[Patient]) -> None:
    PendingRecalibration.objects.all().delete()
    now = timezone.now()
    services.twin_recalibration_request(patient_ids=[imported[0].pk], reason="device", now=now)
    PendingRecalibration.objects.update(enqueued_at=now)
    assert services.twin_sweep(now=now)["recalibrations"] == 0
    lease = services.twin_config().lease_seconds
    swept = services.twin_sweep(now=now + dt.timedelta(seconds=lease + 1))
    assert swept["recalibrations"] == 1


def test_each_patients_backtest_is_refreshed_once_in_each_four_week_cycle() -> None:
    from models_engine.snapshot import model_version

    version = model_version()
    refreshed: dict[int, list[int]] = {pid: [] for pid in range(1, 57)}
    for pid in refreshed:
        prev = TwinSnapshot(model_version=version, backtest_at=T0)
        for day in range(1, services.BACKTEST_KEEP_DAYS + 1):
            now = T0 + dt.timedelta(days=day)
            if not services._backtest_still_good(prev, patient_id=pid, now=now, version=version):
                refreshed[pid].append(day)
                prev = TwinSnapshot(model_version=version, backtest_at=now)
    assert all(len(days) == 1 for days in refreshed.values())
    per_day = [sum(day in days for days in refreshed.values()) for day in range(1, 29)]
    assert max(per_day) == 2  # 56 patients spread over 28 nights
    other_model = TwinSnapshot(model_version="0.9+old", backtest_at=T0)
    assert not services._backtest_still_good(other_model, patient_id=1, now=T0, version=version)


@pytest.mark.django_db
def test_a_plan_may_stop_only_a_drug_class_the_patient_takes_now(
    imported: list[Patient], clinician: Any
) -> None:
    from patients.models import Medication

    patient = imported[0]
    now = timezone.now()
    today = now.date()
    stop = services.PlanItemInput("thiazide", start=today, action="stop")
    with pytest.raises(services.PlanError) as refused:
        services.whatif_submit(
            user=clinician,
            patient=patient,
            plans={"stop statin": [services.PlanItemInput("statin", start=today, action="stop")]},
            now=now,
        )
    assert refused.value.problems == [
        {
            "field": "plans.stop statin[0].intervention",
            "message": "the patient does not take Statin now; "
            "only a current drug class can be stopped",
        }
    ]
    run = services.whatif_submit(
        user=clinician, patient=patient, plans={"stop thiazide": [stop]}, now=now
    )
    assert run.plans["stop thiazide"][0]["action"] == "stop"
    assert services._stored_plans(run) == {"stop thiazide": [stop]}
    # once the prescription is stopped in the record there is nothing left to stop
    Medication.objects.filter(patient=patient, treatment_class="thiazide").update(
        status="stopped", stop=now - dt.timedelta(days=1)
    )
    with pytest.raises(services.PlanError):
        services.whatif_submit(
            user=clinician, patient=patient, plans={"stop thiazide": [stop]}, now=now
        )


def test_a_plan_may_not_stop_and_add_one_class_nor_stop_a_lifestyle_item() -> None:
    today = timezone.now().date()
    problems = services.whatif_validate(
        plans={
            "switch": [
                services.PlanItemInput("thiazide", start=today, action="stop"),
                services.PlanItemInput("thiazide", start=today, dose=2.0),
            ],
            "unsmoke": [services.PlanItemInput("smoking_cessation", start=today, action="stop")],
            "past": [
                services.PlanItemInput(
                    "thiazide", start=today - dt.timedelta(days=1), action="stop"
                )
            ],
        },
        today=today,
        taking={"thiazide"},
    )
    assert {(p["field"], p["message"].split(",")[0]) for p in problems} == {
        ("plans.switch", "a plan may not both stop and add Thiazide diuretic"),
        ("plans.unsmoke[0]", "only a drug class can be stopped"),
        ("plans.past[0].start", "start may not be in the past"),
    }
