"""The twin's results in the admin: visible to data managers, read-only, never to clinicians."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patients.models import Patient
from tests.second_factor import verified_login
from tests.twins.conftest import purge_queues
from twins import services
from twins.models import RecomputeChunk, RecomputeRun


@pytest.mark.django_db
def test_a_data_manager_sees_runs_with_their_chunks_and_counts(
    data_manager: Any, imported: list[Patient]
) -> None:
    run = services.recompute_run_start(chunk_size=2)
    purge_queues()
    first = RecomputeChunk.objects.filter(run=run).order_by("index").first()
    assert first is not None
    services.recompute_chunk_execute(chunk_id=first.pk)
    client = Client()
    verified_login(client, data_manager)
    listing = client.get("/admin/twins/recomputerun/")
    assert listing.status_code == 200 and b"Nightly" in listing.content
    detail = client.get(f"/admin/twins/recomputerun/{run.pk}/change/")
    assert detail.status_code == 200
    assert b"Patients done" in detail.content and b"succeeded" in detail.content
    assert b'name="_save"' not in detail.content  # read-only
    for page in ("twinsnapshot", "twinalert", "twinstate", "pendingrecalibration", "whatifrun"):
        assert client.get(f"/admin/twins/{page}/").status_code == 200, page


@pytest.mark.django_db
def test_a_clinician_cannot_open_the_twin_admin(clinician: Any) -> None:
    client = Client()
    client.force_login(clinician)
    response = client.get("/admin/twins/recomputerun/")
    assert response.status_code in (302, 403)
    assert RecomputeRun.objects.count() == 0
