"""Stored twin snapshots: computed in bulk from the records, with provenance, skipped when nothing
changed, alerts stored once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from models_engine.snapshot import model_version
from patients.models import Observation
from twins import selectors, services
from twins.models import TwinSnapshot, TwinState


@pytest.mark.django_db
def test_it_builds_histories_for_a_batch_with_a_fixed_number_of_queries(imported) -> None:
    ids = [p.pk for p in imported]
    now = timezone.now()
    with CaptureQueriesContext(connection) as one:
        selectors.twin_inputs_for(ids[:1], reference=now)
    with CaptureQueriesContext(connection) as all_:
        inputs = selectors.twin_inputs_for(ids, reference=now)
    assert len(one) == len(all_) == 4
    assert [ti.patient_id for ti in inputs] == ids
    sbp = Observation.objects.filter(patient=imported[0], code="8480-6").count()
    assert inputs[0].history.observations["sbp"].t.size == sbp


@pytest.mark.django_db
def test_a_snapshot_stores_bands_risk_and_provenance(imported) -> None:
    ids = [p.pk for p in imported]
    counts = services.snapshots_compute(patient_ids=ids, task_id="t-1", trigger="test")
    # a patient who has died gets no forecast
    dead = [p.pk for p in imported if p.deceased_at is not None]
    assert counts.done == len(ids) - len(dead) and counts.skipped == len(dead) == 1
    assert counts.failed == 0 and not TwinSnapshot.objects.filter(patient_id__in=dead).exists()
    snap = TwinSnapshot.objects.get(patient=imported[0])
    assert snap.model_version == model_version() and len(snap.inputs_sha256) == 64
    assert snap.task_id == "t-1" and snap.backtest_at == snap.computed_at
    assert set(snap.backtest) <= {"sbp", "dbp", "hba1c", "ldl", "weight"} and snap.backtest
    bands = snap.band_array()
    assert bands.shape == (len(snap.variables), 5, 121)
    median, lo80, hi80, lo95, hi95 = bands[snap.variables.index("sbp")]
    assert np.all(lo95 <= lo80) and np.all(lo80 <= median) and np.all(median <= hi80)
    assert np.all(hi80 <= hi95)
    assert snap.t_years[-1] == pytest.approx(10.0)
    state = TwinState.objects.get(patient=imported[0])
    assert state.latest_id == snap.pk
    payload = services.snapshot_payload(snap)
    assert len(payload["variables"]["hba1c"]["median"]) == 121


@pytest.mark.django_db
def test_an_unchanged_record_is_skipped_and_a_new_reading_makes_a_new_snapshot(imported) -> None:
    patient = imported[0]
    services.snapshots_compute(patient_ids=[patient.pk])
    again = services.snapshots_compute(patient_ids=[patient.pk])
    assert again.skipped == 1 and again.done == 0
    assert TwinSnapshot.objects.filter(patient=patient).count() == 1
    Observation.objects.create(
        patient=patient,
        code="8480-6",
        value=240.0,
        unit="mm[Hg]",
        effective_at=timezone.now() - dt.timedelta(minutes=1),
    )
    later = services.snapshots_compute(
        patient_ids=[patient.pk], now=timezone.now() + dt.timedelta(seconds=1)
    )
    assert later.done == 1
    first, second = TwinSnapshot.objects.filter(patient=patient).order_by("computed_at")
    # the patient's own backtest is kept for four weeks rather than recomputed each night
    assert second.backtest_at == first.computed_at and second.backtest == first.backtest
    services.snapshots_compute(
        patient_ids=[patient.pk], now=timezone.now() + dt.timedelta(days=29), force=True
    )
    third = TwinSnapshot.objects.filter(patient=patient).latest("computed_at")
    assert third.backtest_at == third.computed_at
