"""Redis stopped and started again in the middle of a nightly run: writes still commit, the work
they would queue waits in PostgreSQL, and the sweeper finishes everything once Redis is back.

This test stops its broker, so it runs against a Redis of its own, never the one other tests
share: ``make test`` runs it in a separate pytest process with ``TEST_REDIS_URL`` pointing at
port 6391, where the fixture starts (and stops, and starts again) a real ``redis-server``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

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
    TwinSnapshot,
)

pytestmark = pytest.mark.redis_outage
SHARED_PORT = 6379


class PrivateRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.ping, 20, "the private Redis to start")

    def ping(self) -> bool:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return out.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    port = urlparse(settings.CELERY_BROKER_URL).port or SHARED_PORT
    assert port != SHARED_PORT, (
        "this test stops its Redis: run it with TEST_REDIS_URL=redis://127.0.0.1:6391/0 "
        "(make test does) so the shared Redis keeps running"
    )
    redis = PrivateRedis(port)
    if not redis.ping():
        redis.start()
    yield redis
    redis.stop()


@pytest.mark.django_db(transaction=True)
def test_redis_stopped_and_restarted_during_a_run_loses_nothing(
    private_redis: PrivateRedis, worker_process: Any, settings: Any
) -> None:
    settings.TWINPORTAL_TWIN = {**settings.TWINPORTAL_TWIN, "quiet_seconds": 0}
    call_command("generate_cohort", "--patients", "40", "--workers", "1", "--no-progress")
    worker_process(TWINPORTAL_RECALIBRATION_QUIET_SECONDS="0")
    run = services.recompute_run_start(chunk_size=4)
    ids = list(Patient.objects.filter(deceased_at__isnull=True).values_list("pk", flat=True))
    assert run.patients_total == len(ids)
    wait_for(
        lambda: RecomputeChunk.objects.filter(run=run, status=TaskState.SUCCEEDED).exists(),
        what="the first chunk",
    )
    private_redis.stop()

    # a write while Redis is down commits at once; its recalibration waits in PostgreSQL
    began = time.monotonic()
    batch = bundle_import(raw=bundles.dumps(bundles.load()), channel="api")
    assert time.monotonic() - began < 10
    pending = PendingRecalibration.objects.get(patient=batch.patient)
    assert pending.enqueued_at is None

    private_redis.start()  # empty: every message queued before the stop is gone
    lease = services.twin_config().lease_seconds
    queued = services.twin_sweep(now=timezone.now() + dt.timedelta(seconds=lease + 1))
    assert queued["recalibrations"] == 1
    wait_for(
        lambda: RecomputeRun.objects.get(pk=run.pk).finished_at is not None,
        timeout=240,
        what="the run to complete",
    )
    wait_for(
        lambda: TwinSnapshot.objects.filter(patient=batch.patient).exists(),
        what="the imported patient's snapshot",
    )
    run.refresh_from_db()
    assert run.status == RecomputeRun.Status.SUCCEEDED and run.patients_done == len(ids)
    in_run = sorted(TwinSnapshot.objects.filter(run=run).values_list("patient_id", flat=True))
    assert in_run == sorted(ids)
    assert not PendingRecalibration.objects.exists()
