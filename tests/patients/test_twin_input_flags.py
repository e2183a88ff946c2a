"""Readings flagged as implausible reach the twin's inputs with a mask, so the fit can leave them out."""

from __future__ import annotations

import copy
import datetime as dt
import json

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.fhir.extract import history_and_flags_from_bundle
from patients.fhir.importer import bundle_import
from patients.twin_inputs import ObservationPoint, build_history_and_flags
from tests.conftest import FIXTURES
from twins import selectors

UTC = dt.UTC
REASON = "HbA1c 3 % is below the plausible range 4-18 %"


def at(day: int) -> dt.datetime:
    return dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(days=day)


def hba1c_bundle(values: list[float]) -> dict:
    bundle = json.loads((FIXTURES / "import" / "unitless_bp_panel.json").read_text())
    for i, value in enumerate(values):
        oid = f"5b0e6a52-2f51-4c38-9d0e-7a1c2b3d4fb{i}"
        bundle["entry"].append(
            {
                "fullUrl": f"urn:uuid:{oid}",
                "resource": {
                    "resourceType": "Observation",
                    "id": oid,
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "subject": {"reference": bundle["entry"][0]["fullUrl"]},
                    "effectiveDateTime": f"2019-0{i + 1}-01T09:00:00+00:00",
                    "valueQuantity": {"value": value, "unit": "%", "code": "%"},
                },
            }
        )
    return bundle


def test_the_mask_is_aligned_with_the_series_and_names_each_reason() -> None:
    points = [
        ObservationPoint("4548-4", at(200), 6.4),
        ObservationPoint("4548-4", at(100), 3.0, implausible_reason=REASON),
        ObservationPoint("4548-4", at(0), 6.1),
        ObservationPoint("8480-6", at(50), 131.0),
    ]
    history, flags = build_history_and_flags(
        patient_id="p",
        sex="female",
        birth_date=dt.date(1950, 1, 1),
        observations=points,
        medications=[],
        conditions=[],
        reference=at(200),
    )
    series = history.observations["hba1c"]
    # flagged readings stay in the history; the mask says which to leave out
    assert np.allclose(series.y, [6.1, 3.0, 6.4])
    assert flags["hba1c"].mask.tolist() == [False, True, False]
    assert flags["hba1c"].reasons == ("", REASON, "")
    assert set(flags) == {"hba1c"}


def test_a_bundle_gives_the_backtest_the_same_mask() -> None:
    history, flags = history_and_flags_from_bundle(hba1c_bundle([6.2, 3.0, 6.0]))
    assert history.observations["hba1c"].y.tolist() == [6.2, 3.0, 6.0]
    assert flags["hba1c"].mask.tolist() == [False, True, False]
    assert "sbp" in history.observations and "sbp" not in flags


@pytest.mark.django_db
def test_stored_flags_reach_the_twin_inputs_without_extra_queries() -> None:
    bundle = hba1c_bundle([6.2, 3.0, 6.0])
    flagged = bundle_import(raw=json.dumps(bundle).encode(), channel="command").patient
    plain_bundle = copy.deepcopy(hba1c_bundle([6.2, 6.0]))
    plain_bundle["entry"][0]["resource"]["id"] = "another-patient"
    plain_bundle["entry"][0]["resource"]["identifier"][0]["value"] = "another-mrn"
    for i, entry in enumerate(plain_bundle["entry"][1:]):
        entry["resource"]["id"] = entry["resource"]["id"][:-2] + f"e{i}"
        entry["fullUrl"] = "urn:uuid:" + entry["resource"]["id"]
    plain = bundle_import(raw=json.dumps(plain_bundle).encode(), channel="command").patient
    assert flagged is not None and plain is not None
    now = dt.datetime.now(UTC)
    with CaptureQueriesContext(connection) as queries:
        inputs = selectors.twin_inputs_for([flagged.pk, plain.pk], reference=now)
    assert len(queries) == 4
    assert inputs[0].flags["hba1c"].mask.tolist() == [False, True, False]
    assert inputs[0].flags["hba1c"].reasons[1] == REASON
    assert inputs[1].flags == {}
