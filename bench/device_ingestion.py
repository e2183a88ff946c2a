"""Home-device ingestion through the real API: batches against the naive way, one reading a request.

Run: ``.venv/bin/python -m bench.device_ingestion [--seconds 30] [--readings 50000]``. It (re)creates a
PostgreSQL database ``twinportal_bench_devices`` on 127.0.0.1, migrates it, creates 100 patients with
one home device each (cuffs, scales and glucose meters), starts gunicorn with the production settings
on loopback, and posts batches from several client threads until both the time and the reading
count are reached; then, in the same run, the same devices send one reading per request. Every
answer is checked (all readings accepted) and the stored rows are counted. Results go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DB_NAME = "twinportal_bench_devices"
ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "DJANGO_SETTINGS_MODULE": "twinportal.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": "redis://127.0.0.1:6379/12",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    # the twin's recalibration messages go to queues of their own, purged afterwards
    "TWINPORTAL_QUEUE_PREFIX": "bench-devices",
}
os.environ.update(ENV)
# quiet set-up here; the server logs every batch at INFO, as in production
os.environ["TWINPORTAL_LOG_LEVEL"] = "WARNING"

#: devices of each kind (one per patient)
KINDS = {"bp_cuff": 50, "scale": 30, "glucose_meter": 20}
WORKERS = 2


def recreate_database() -> None:
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c"]
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {DB_NAME}"], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Device:
    secret: str
    kind: str
    #: readings sent so far: the next reading's id and time come from it
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def readings(self, n: int, start: dt.datetime) -> list[dict[str, Any]]:
        with self.lock:
            first, self.sent = self.sent, self.sent + n
        out = []
        for i in range(first, first + n):
            # one reading a minute, going back from the start, so no two are the same
            reading: dict[str, Any] = {
                "id": f"r{i}",
                "time": (start - dt.timedelta(minutes=i)).isoformat(),
            }
            if self.kind == "bp_cuff":
                reading.update(
                    type="blood_pressure",
                    systolic=110 + i % 60,
                    diastolic=65 + i % 30,
                    unit="mm[Hg]",
                )
            elif self.kind == "scale":
                reading.update(type="weight", value=round(70 + (i % 200) / 10, 1), unit="kg")
            elif i % 2:
                reading.update(type="glucose", value=round(4 + (i % 60) / 10, 1), unit="mmol/L")
            else:
                reading.update(type="glucose", value=80 + i % 90, unit="mg/dL")
            out.append(reading)
        return out


@dataclass
class Phase:
    name: str
    batch: int
    latencies: list[float] = field(default_factory=list)
    #: (seconds since the phase began, readings stored) per successful request
    completions: list[tuple[float, int]] = field(default_factory=list)
    readings: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.readings / self.seconds

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000

    def slowest_window(self, seconds: float = 5.0) -> float:
        """Readings/s in the slowest whole window of ``seconds`` (sustained, not just on average)."""
        windows = int(self.seconds // seconds)
        totals = [0] * windows
        for at, n in self.completions:
            if int(at // seconds) < windows:
                totals[int(at // seconds)] += n
        return min(totals) / seconds if totals else float("nan")


def run_phase(
    phase: Phase,
    *,
    url: str,
    devices: list[Device],
    threads: int,
    min_seconds: float,
    min_readings: int,
    max_seconds: float,
    start: dt.datetime,
) -> None:
    import requests

    cycle = itertools.cycle(devices)
    cycle_lock = threading.Lock()
    mutex = threading.Lock()
    began = time.perf_counter()

    def done() -> bool:
        elapsed = time.perf_counter() - began
        return elapsed >= max_seconds or (elapsed >= min_seconds and phase.readings >= min_readings)

    def client() -> None:
        session = requests.Session()
        while not done():
            with cycle_lock:
                device = next(cycle)
            body = {"readings": device.readings(phase.batch, start)}
            sent = time.perf_counter()
            response = session.post(
                url, json=body, headers={"Authorization": f"Device {device.secret}"}, timeout=60
            )
            latency = time.perf_counter() - sent
            ok = response.status_code == 201 and response.json()["accepted"] == phase.batch
            with mutex:
                phase.latencies.append(latency)
                if ok:
                    phase.readings += phase.batch
                    phase.completions.append((time.perf_counter() - began, phase.batch))
                else:
                    phase.failures.append(f"{response.status_code} {response.text[:200]}")

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    phase.seconds = time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="shortest batched phase")
    parser.add_argument("--readings", type=int, default=50_000, help="fewest batched readings")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    args = parser.parse_args()
    recreate_database()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import user_create
    from bench._report import write_section
    from devices.services import device_token_issue
    from patients.models import Observation, Patient
    from twinportal.celery import app as celery_app
    from twins.models import PendingRecalibration

    call_command("migrate", verbosity=0)
    manager = user_create(
        username="bench.dm", password=secrets.token_urlsafe(16), role="data_manager"
    )
    kinds = [kind for kind, n in KINDS.items() for _ in range(n)]
    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"BENCH-{i:04d}",
                given_name="Bench",
                family_name=f"Patient {i}",
                birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=97 * i),
            )
            for i in range(len(kinds))
        ]
    )
    devices = [
        Device(
            device_token_issue(
                patient=p, kind=kind, label=f"bench {kind}", created_by=manager
            ).secret,
            kind,
        )
        for p, kind in zip(patients, kinds, strict=True)
    ]
    connection.close()

    port = free_port()
    log_path = ROOT / "var" / "bench_device_ingestion.log"
    log_path.parent.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "twinportal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--timeout",
        "60",
    ]
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "TWINPORTAL_LOG_LEVEL": "INFO"}, stderr=log
        )
    url = f"http://127.0.0.1:{port}/api/v1/devices/readings/"
    try:
        import requests

        for _ in range(100):
            try:
                if requests.get(url, timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        # warm both workers (imports, connections) before measuring
        warm = Phase("warm-up", 10)
        run_phase(
            warm,
            url=url,
            devices=devices,
            threads=args.threads,
            min_seconds=2,
            min_readings=0,
            max_seconds=2,
            start=start,
        )
        batched = Phase("batched", args.batch)
        run_phase(
            batched,
            url=url,
            devices=devices,
            threads=args.threads,
            min_seconds=args.seconds,
            min_readings=args.readings,
            max_seconds=max(args.seconds * 4, 120),
            start=start,
        )
        naive = Phase("naive", 1)
        run_phase(
            naive,
            url=url,
            devices=devices,
            threads=args.threads,
            min_seconds=args.naive_seconds,
            min_readings=0,
            max_seconds=args.naive_seconds,
            start=start,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    sent = warm.readings + batched.readings + naive.readings
    bp_share = KINDS["bp_cuff"] / len(kinds)
    rows = Observation.objects.count()
    panels = Observation.objects.filter(parent__isnull=True).count()
    pending = PendingRecalibration.objects.count()
    with celery_app.connection_for_write() as conn:
        for queue in ("bench-devices", "bench-devices-batch", "bench-devices-interactive"):
            conn.default_channel.queue_purge(queue)
    failures = warm.failures + batched.failures + naive.failures
    for phase in (batched, naive):
        print(
            f"{phase.name}: {phase.readings:,} readings in {phase.seconds:.1f} s = "
            f"{phase.rate:,.0f} readings/s (slowest 5 s: {phase.slowest_window():,.0f}); "
            f"{len(phase.latencies):,} requests, "
            f"p50 {phase.percentile(50):.1f} ms, p95 {phase.percentile(95):.1f} ms",
            flush=True,
        )
    print(f"stored {panels:,} readings ({rows:,} rows) of {sent:,} sent; failures {len(failures)}")
    if failures or panels != sent:
        print("\n".join(failures[:10]))
        raise SystemExit("some readings were not stored; no results written")

    body = (
        f"`POST /api/v1/devices/readings/` through gunicorn ({WORKERS} sync workers, production "
        "settings, persistent database connections, JSON logs at INFO) on loopback, against "
        f"PostgreSQL on the same machine (a fresh database `{DB_NAME}`). {len(kinds)} patients with "
        f"one device each ({KINDS['bp_cuff']} blood-pressure cuffs, {KINDS['scale']} scales, "
        f"{KINDS['glucose_meter']} glucose meters sending every other reading in mmol/L); "
        f"{args.threads} client threads in one Python process on the same cores, each posting "
        "for the next device in turn and checking that every reading was accepted. A blood "
        f"pressure is three rows (panel and components), so {bp_share:.0%} of readings write three "
        "rows and the rest one; each batch is validated, checked for duplicates against the "
        "record, bulk-inserted in one transaction and asks for the patient's twin to be "
        "recalibrated (debounced).\n\n"
        "| way | readings | time | readings/s | slowest 5 s | requests | request p50 | request p95 |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {label} | {p.readings:,} | {p.seconds:.1f} s | {p.rate:,.0f} | "
            f"{p.slowest_window():,.0f} | "
            f"{len(p.latencies):,} | {p.percentile(50):.1f} ms | {p.percentile(95):.1f} ms |"
            for label, p in (
                (f"batches of {batched.batch}", batched),
                ("naive: one reading per request", naive),
            )
        )
        + f"\n\nBatched ingestion is {batched.rate / naive.rate:.1f}x the naive way's throughput "
        "(target: at least 1,000 readings/s sustained; 'slowest 5 s' is the rate in the slowest "
        "whole five-second window). Settings: "
        f"`--seconds {args.seconds:g} --readings {args.readings} --batch {args.batch} "
        f"--threads {args.threads} --naive-seconds {args.naive_seconds:g}`. After the run the database held "
        f"{panels:,} readings in {rows:,} observation rows, exactly the {sent:,} sent (warm-up "
        f"included), and {pending} pending recalibrations, one per patient, however many batches "
        "each sent.\n"
    )
    write_section("device_ingestion", body)


if __name__ == "__main__":
    sys.exit(main())
