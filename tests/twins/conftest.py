"""Fixtures for the twin's tests: real Celery workers (a thread, or a separate process that can be
killed) on this test process's own queues, against the real Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def queues() -> list[str]:
    prefix = settings.CELERY_QUEUE_PREFIX
    return [prefix, f"{prefix}-batch", f"{prefix}-interactive"]


def purge_queues() -> None:
    from twinportal.celery import app

    with app.connection_for_write() as conn:
        for name in queues():
            conn.default_channel.queue_purge(name)


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or 'the Celery worker'}")


@pytest.fixture
def quick_twin(settings: Any) -> dict[str, int]:
    """No quiet period: a recalibration runs as soon as it is queued."""
    cfg = {**settings.TWINPORTAL_TWIN, "quiet_seconds": 0}
    settings.TWINPORTAL_TWIN = cfg
    return cfg


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[object]:
    """A worker thread in this process serving all three of this process's queues."""
    from celery.contrib.testing.worker import start_worker

    from twinportal.celery import app

    purge_queues()
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=60, queues=queues()
    ) as worker:
        yield worker


class WorkerProcess:
    """``celery worker`` as a separate process group, on the test database and queues."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.write_text("")
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "twinportal",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                ",".join(queues()),
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: b"ready." in self.log.read_bytes(), 60, "the worker process to start")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_process(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes (``make(**env)``); all are stopped at the end of the test."""
    from django.db import connection

    started: list[WorkerProcess] = []
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    purge_queues()

    def make(**extra: str) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "twinportal.settings.test",
            "TEST_DATABASE_URL": database_url,
            **extra,
        }
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.start()
        return worker

    yield make
    for worker in started:
        worker.stop()
