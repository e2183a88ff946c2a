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
from patients.models import Condition, Medication, Observation
from patients.twin_inputs import (
    ConditionSpan,
    MedicationPeriod,
    ObservationPoint,
    build_history_and_flags,
)
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
def test_the_batch_read_builds_what_the_row_by_row_builder_builds(imported) -> None:
    patient = imported[0]
    when = timezone.now() - dt.timedelta(days=3)
    # rows the builder must leave out or order: no value, no result, a tie in time, a flag, and
    # the latest smoking status
    for code, value, status, reason, value_code in (
        ("8480-6", None, "final", "", ""),
        ("8480-6", 150.0, "entered-in-error", "", ""),
        ("8480-6", 141.0, "final", "", ""),
        ("8480-6", 139.0, "final", "", ""),
        ("4548-4", 3.1, "final", "HbA1c 3.1 % is below the plausible range", ""),
        ("72166-2", None, "final", "", "449868002"),
    ):
        Observation.objects.create(
            patient=patient,
            code=code,
            value=value,
            unit="mm[Hg]" if code == "8480-6" else "%",
            status=status,
            implausible_reason=reason,
            value_code=value_code,
            effective_at=when,
        )
    now = timezone.now()
    ids = [p.pk for p in imported]
    inputs = selectors.twin_inputs_for(ids, reference=now)
    for ti, p in zip(inputs, imported, strict=True):
        expected, flags = build_history_and_flags(
            patient_id=str(p.pk),
            sex=p.sex,
            birth_date=p.birth_date,
            observations=[
                ObservationPoint(
                    o.code, o.effective_at, o.value, o.value_code, o.status, o.implausible_reason
                )
                for o in Observation.objects.filter(
                    patient=p, effective_at__lte=now, code__in=selectors.TWIN_CODES
                )
            ],
            medications=[
                MedicationPeriod(m.name, m.status, m.start, m.stop, m.authored_on)
                for m in Medication.objects.filter(patient=p).order_by("pk")
            ],
            conditions=[
                ConditionSpan(
                    c.code, c.onset_at, c.abatement_at, c.clinical_status, c.verification_status
                )
                for c in Condition.objects.filter(patient=p).order_by("pk")
            ],
            race=p.race,
            reference=now,
        )
        got = ti.history
        assert got.observations.keys() == expected.observations.keys()
        for variable, series in expected.observations.items():
            assert got.observations[variable].y.tolist() == series.y.tolist(), variable
            assert np.allclose(got.observations[variable].t, series.t, rtol=0, atol=1e-9)
        assert (got.treatments, got.smoker, got.diabetes, got.race, got.reference_date) == (
            expected.treatments,
            expected.smoker,
            expected.diabetes,
            expected.race,
            expected.reference_date,
        )
        assert {k: (f.mask.tolist(), f.reasons) for k, f in ti.flags.items()} == {
            k: (f.mask.tolist(), f.reasons) for k, f in flags.items()
        }
    first = inputs[0].history
    assert first.smoker and 141.0 in first.observations["sbp"].y
    assert 150.0 not in first.observations["sbp"].y
    # readings for checking an earlier forecast: all of them, or only those after a given time
    assert len(inputs[0].readings) > 4
    after = selectors.twin_inputs_for(
        ids[:2], reference=now, readings_after={patient.pk: when - dt.timedelta(hours=1)}
    )
    assert sorted(r.value for r in after[0].readings) == [3.1, 139.0, 141.0]
    assert after[1].readings == ()


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
