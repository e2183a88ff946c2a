"""Property 16: each imported bundle's SHA-256 is stored; each simulation result stores the model
version, its parameters, the hash of the record rows it was computed from and the task id, and
computing it again from the same inputs reproduces it."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import pytest
import time_machine

from models_engine.snapshot import model_version
from patients.fhir.importer import bundle_import
from patients.fhir.parse import BundleError
from patients.models import ImportBatch, Observation, Patient
from tests.conftest import SYNTHEA
from tests.patients.bundles import dumps, load, weight_index
from twins import services
from twins.models import TwinSnapshot
from twins.selectors import twin_inputs_for

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


def test_every_import_attempt_stores_the_sha256_of_the_bytes_received() -> None:
    raw = SYNTHEA[0].read_bytes()
    ok = bundle_import(raw=raw, channel="command")
    assert ok.sha256 == hashlib.sha256(raw).hexdigest() and ok.size_bytes == len(raw)
    broken = raw[:-5]
    with pytest.raises(BundleError):
        bundle_import(raw=broken, channel="api")
    failed = ImportBatch.objects.get(status=ImportBatch.Status.FAILED)
    assert failed.sha256 == hashlib.sha256(broken).hexdigest()
    # every row written names the batch that brought it
    assert set(Observation.objects.values_list("import_batch", flat=True)) == {ok.pk}


def test_a_snapshot_stores_its_provenance_and_is_reproduced_from_the_same_inputs(
    imported: list[Patient],
) -> None:
    patient = imported[0]
    services.snapshots_compute(patient_ids=[patient.pk], now=T0, task_id="task-a")
    services.snapshots_compute(patient_ids=[patient.pk], now=T0, task_id="task-b", force=True)
    first, second = TwinSnapshot.objects.filter(patient=patient).order_by("pk")

    (inputs,) = twin_inputs_for([patient.pk], reference=T0)
    assert first.model_version == model_version()
    assert first.inputs_sha256 == inputs.inputs_sha256
    assert (first.task_id, second.task_id) == ("task-a", "task-b")
    assert first.calibration  # the fitted parameters
    assert second.inputs_sha256 == first.inputs_sha256
    assert second.calibration == first.calibration
    assert second.risk == first.risk
    np.testing.assert_array_equal(second.band_array(), first.band_array())


def test_a_changed_record_changes_the_input_hash(imported: list[Patient]) -> None:
    b = load()
    patient = bundle_import(raw=dumps(b), channel="command").patient
    assert patient is not None
    (before,) = twin_inputs_for([patient.pk], reference=T0)
    b["entry"][weight_index(b)]["resource"]["valueQuantity"]["value"] = 101.0
    bundle_import(raw=dumps(b), channel="command")
    (after,) = twin_inputs_for([patient.pk], reference=T0)
    assert after.inputs_sha256 != before.inputs_sha256


def test_a_whatif_run_stores_its_provenance_and_is_reproduced_from_the_same_inputs(
    clinician: Any, imported: list[Patient]
) -> None:
    patient = imported[0]
    plans = {"ACE inhibitor": [services.PlanItemInput("ace_inhibitor", start=T0.date())]}
    runs = [
        services.whatif_submit(
            user=clinician, patient=patient, plans=plans, horizon_years=5.0, now=T0
        )
        for _ in range(2)
    ]
    with time_machine.travel(T0, tick=False):
        done = [
            services.whatif_execute(run_id=run.pk, task_id=f"task-{i}")
            for i, run in enumerate(runs)
        ]
    first, second = done
    (inputs,) = twin_inputs_for([patient.pk], reference=T0)
    assert first.status == second.status == "succeeded"
    assert (first.model_version, first.inputs_sha256) == (model_version(), inputs.inputs_sha256)
    assert (first.task_id, second.task_id) == ("task-0", "task-1")
    assert first.plans == second.plans and first.horizon_years == 5.0
    assert second.result == first.result
