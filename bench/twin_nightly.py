"""The nightly twin recompute end to end: 1,000, 10,000 and 100,000 patients in PostgreSQL.

Run: ``python -m bench.twin_nightly [--sizes 1000,10000,100000] [--concurrency 2]``.

It uses (and fills, the first time) a PostgreSQL database ``twinportal_nightly`` on 127.0.0.1:
10,000 patients from the cohort generator (``generate_cohort``), then copies of them made in SQL up
to the largest size (new ids, MRNs and FHIR ids; every observation value moved by up to ±2 % so no
two copies have the same record), because the generator needs about an hour for 100,000. For each
size it empties the twin's tables, starts real Celery worker processes (``--concurrency`` on the
batch queue, one more on the interactive queue), dispatches a run the way beat does and times it
until the last chunk commits: reads, calibration, ten monthly years of bands, PREVENT, each
patient's own backtest, drift and risk alerts, writes. During the largest run it submits what-if
comparisons and records how long they waited. The naive way (one patient at a time: ORM reads,
``Twin.from_history``, ``Twin.forecast``, one ``save()``) is timed on a sample in the same run.
Results go to docs/benchmarks.md.

The runs use the server's write settings that the README recommends for an installation of this
size (``WRITE_SETTINGS``: a night writes about 2 GB of snapshots per 100,000 patients); they are
set with ``ALTER SYSTEM`` and a reload for the duration of the benchmark and put back afterwards
(``--server-as-is`` leaves the server alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DB_NAME = "twinportal_nightly"
BASE_PATIENTS = 10_000
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.test")
os.environ["TEST_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
os.environ["TWINPORTAL_QUEUE_PREFIX"] = "twinportal-bench"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: PostgreSQL settings for the nightly write volume (README, "Production deployment"): with the
#: 1 GB default of max_wal_size the run forces a checkpoint every few hundred megabytes of WAL and
#: each page changed after one is logged whole again, which cost about a tenth of the
#: 100,000-patient run's time on 2 cores.
WRITE_SETTINGS = {"max_wal_size": "8GB", "checkpoint_timeout": "15min", "wal_compression": "lz4"}

TWIN_TABLES = (
    "twins_twinalert",
    "twins_whatifrun",
    "twins_twinstate",
    "twins_twinsnapshot",
    "twins_recomputechunk",
    "twins_recomputerun",
    "twins_pendingrecalibration",
)


def psql(sql: str, db: str = DB_NAME) -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql, db],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def ensure_database() -> None:
    if psql(f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'", "postgres") != "1":
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)


def apply_write_settings() -> dict[str, str | None]:
    """Set ``WRITE_SETTINGS`` on the server; returns what to put back (None: the file's value)."""
    previous: dict[str, str | None] = {}
    for name, value in WRITE_SETTINGS.items():
        # a value set by an earlier ALTER SYSTEM is put back as it was; any other is reset
        row = psql(
            f"SELECT setting || '|' || coalesce(sourcefile, '') FROM pg_settings WHERE name = '{name}'"
        )
        setting, _, source = row.partition("|")
        previous[name] = setting if source.endswith("postgresql.auto.conf") else None
        psql(f"ALTER SYSTEM SET {name} = '{value}'", "postgres")
    psql("SELECT pg_reload_conf()", "postgres")
    return previous


def restore_settings(previous: dict[str, str | None]) -> None:
    for name, setting in previous.items():
        if setting is None:
            psql(f"ALTER SYSTEM RESET {name}", "postgres")
        else:
            psql(f"ALTER SYSTEM SET {name} = '{setting}'", "postgres")
    psql("SELECT pg_reload_conf()", "postgres")


def replicate(target: int) -> None:
    """Copies of the first BASE_PATIENTS patients (with their readings, drugs and diagnoses) until
    there are ``target`` patients. Copy k of patient i gets id i + k * stride."""
    have = int(psql("SELECT count(*) FROM patients_patient"))
    if have >= target:
        return
    stride_p = BASE_PATIENTS
    stride_o = int(psql(f"SELECT max(id) FROM patients_observation WHERE patient_id <= {stride_p}"))
    stride_m = int(psql(f"SELECT max(id) FROM patients_medication WHERE patient_id <= {stride_p}"))
    stride_c = int(psql(f"SELECT max(id) FROM patients_condition WHERE patient_id <= {stride_p}"))
    for k in range(have // BASE_PATIENTS, target // BASE_PATIENTS):
        print(f"copy {k}: patients {k * stride_p + 1}-{(k + 1) * stride_p}", flush=True)
        psql(
            f"""
            BEGIN;
            -- copies of rows that already passed every check: foreign keys and the history
            -- triggers are skipped for this bulk copy (a superuser setting, this transaction only)
            SET LOCAL session_replication_role = replica;
            INSERT INTO patients_patient (id, fhir_id, mrn, mrn_system, given_name, family_name, sex,
                birth_date, deceased_at, race, ethnicity, created_at, updated_at, import_batch_id)
            SELECT id + {k * stride_p}, fhir_id || '-c{k}', mrn || '-c{k}', mrn_system, given_name,
                family_name, sex, birth_date, deceased_at, race, ethnicity, now(), now(), import_batch_id
            FROM patients_patient WHERE id <= {stride_p};
            INSERT INTO patients_observation (id, fhir_id, component_index, code, display, category,
                status, value, unit, original_value, original_unit, value_code, value_code_system,
                value_display, value_string, effective_at, issued_at, source, implausible, created_at,
                encounter_id, import_batch_id, parent_id, patient_id)
            SELECT id + {k * stride_o}, fhir_id || '-c{k}', component_index, code, display, category,
                status, value * (0.98 + 0.04 * random()), unit, original_value, original_unit,
                value_code, value_code_system, value_display, value_string, effective_at, issued_at,
                source, implausible, now(), NULL, import_batch_id, parent_id + {k * stride_o},
                patient_id + {k * stride_p}
            FROM patients_observation WHERE patient_id <= {stride_p};
            INSERT INTO patients_medication (id, fhir_id, rxnorm_code, name, dose_value, dose_unit,
                frequency, dosage_text, start, stop, authored_on, status, treatment_class,
                statin_intensity, dose_multiple, requester, encounter_id, import_batch_id, patient_id)
            SELECT id + {k * stride_m}, fhir_id || '-c{k}', rxnorm_code, name, dose_value, dose_unit,
                frequency, dosage_text, start, stop, authored_on, status, treatment_class,
                statin_intensity, dose_multiple, requester, NULL, import_batch_id,
                patient_id + {k * stride_p}
            FROM patients_medication WHERE patient_id <= {stride_p};
            INSERT INTO patients_condition (id, fhir_id, code, display, clinical_status,
                verification_status, onset_at, abatement_at, recorded_at, encounter_id,
                import_batch_id, patient_id)
            SELECT id + {k * stride_c}, fhir_id || '-c{k}', code, display, clinical_status,
                verification_status, onset_at, abatement_at, recorded_at, NULL, import_batch_id,
                patient_id + {k * stride_p}
            FROM patients_condition WHERE patient_id <= {stride_p};
            COMMIT;
            """
        )
    for table in ("patient", "observation", "medication", "condition"):
        psql(
            f"SELECT setval(pg_get_serial_sequence('patients_{table}', 'id'), "
            f"(SELECT max(id) FROM patients_{table}))"
        )
    psql("VACUUM ANALYZE patients_observation")


class Workers:
    """Celery worker processes on the bench queues; samples their peak memory."""

    def __init__(self, concurrency: int) -> None:
        from django.conf import settings

        prefix = settings.CELERY_QUEUE_PREFIX
        env = {**os.environ}
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "twinportal",
                    "worker",
                    "-Q",
                    queues,
                    "-c",
                    str(c),
                    "-n",
                    f"{name}@%h",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, queues, c in (
                ("batch", f"{prefix}-batch", concurrency),
                ("interactive", f"{prefix},{prefix}-interactive", 1),
            )
        ]
        self.peak_kib = 0
        time.sleep(6)

    def sample(self) -> None:
        for proc in self.procs:
            for pid in [proc.pid, *self._children(proc.pid)]:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]

    def stop(self) -> None:
        import signal

        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.wait(60)


def timed_run(
    n: int, concurrency: int, *, whatifs: int = 0, stale_days: int | None = None
) -> dict[str, float]:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from patients.models import Patient
    from twins import services
    from twins.models import RecomputeRun, TwinAlert, TwinSnapshot, WhatIfRun

    ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True)[:n])
    workers = Workers(concurrency)
    user = User.objects.filter(username="bench").first() or User.objects.create(
        username="bench", role="clinician"
    )
    try:
        began = time.perf_counter()
        run = services.recompute_run_start(
            kind=RecomputeRun.Kind.MANUAL, patient_ids=ids, stale_after_days=stale_days
        )
        submitted: list[int] = []
        next_whatif = began + 30.0
        while True:
            workers.sample()
            done = RecomputeRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists()
            if done:
                break
            if whatifs and len(submitted) < whatifs and time.perf_counter() >= next_whatif:
                start = timezone.now().date() + dt.timedelta(days=7)
                plans = {
                    "ACE inhibitor": [services.PlanItemInput("ace_inhibitor", start)],
                    "statin": [services.PlanItemInput("statin", start, intensity="moderate")],
                    "metformin": [services.PlanItemInput("metformin", start)],
                    "lose 5 kg": [services.PlanItemInput("weight_loss_5kg", start)],
                    "stop smoking": [services.PlanItemInput("smoking_cessation", start)],
                    "all": [
                        services.PlanItemInput("ace_inhibitor", start),
                        services.PlanItemInput("statin", start, intensity="high"),
                    ],
                }
                patient = Patient.objects.get(pk=ids[len(submitted) * 97 % len(ids)])
                submitted.append(services.whatif_submit(user=user, patient=patient, plans=plans).pk)
                next_whatif += 20.0
            time.sleep(0.5)
        elapsed = time.perf_counter() - began
        run.refresh_from_db()
        waits, totals = [], []
        deadline = time.monotonic() + 60
        while submitted and time.monotonic() < deadline:
            rows = list(WhatIfRun.objects.filter(pk__in=submitted))
            if all(r.finished_at for r in rows):
                break
            time.sleep(0.5)
        for r in WhatIfRun.objects.filter(pk__in=submitted):
            if r.started_at and r.finished_at:
                waits.append((r.started_at - r.created_at).total_seconds())
                totals.append((r.finished_at - r.created_at).total_seconds())
        snapshots = TwinSnapshot.objects.filter(run=run).count()
        distinct = TwinSnapshot.objects.filter(run=run).values("patient_id").distinct().count()
        with connection.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size('twins_twinsnapshot')")
            snapshot_bytes = cur.fetchone()[0]
        return {
            "patients": n,
            "seconds": elapsed,
            "per_second": n / elapsed,
            "done": run.patients_done,
            "skipped": run.patients_skipped,
            "failed": run.patients_failed,
            "snapshots": snapshots,
            "duplicates": snapshots - distinct,
            "alerts": TwinAlert.objects.filter(snapshot__run=run).count()
            + TwinAlert.objects.filter(kind="drift", created_at__gte=run.started_at).count(),
            "peak_rss_mib": workers.peak_kib / 1024,
            "whatif_start_max": max(waits) if waits else float("nan"),
            "whatif_start_median": statistics.median(waits) if waits else float("nan"),
            "whatif_total_max": max(totals) if totals else float("nan"),
            "whatifs": len(waits),
            "snapshot_mib": snapshot_bytes / 2**20,
        }
    finally:
        workers.stop()


def naive(sample: int) -> float:
    """Seconds per patient the naive way: a task per patient with ORM reads and Twin.from_history."""
    import numpy as np
    from django.utils import timezone

    from models_engine.twin import Twin
    from patients.models import Condition, Medication, Observation, Patient
    from patients.twin_inputs import (
        ConditionSpan,
        MedicationPeriod,
        ObservationPoint,
        build_history,
    )
    from twins.models import TwinSnapshot

    ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True)[:sample])
    began = time.perf_counter()
    for pid in ids:
        patient = Patient.objects.get(pk=pid)
        now = timezone.now()
        history = build_history(
            patient_id=str(pid),
            sex=patient.sex,
            birth_date=patient.birth_date,
            observations=[
                ObservationPoint(o.code, o.effective_at, o.value, o.value_code, o.status)
                for o in Observation.objects.filter(patient=patient)
            ],
            medications=[
                MedicationPeriod(m.name, m.status, m.start, m.stop, m.authored_on)
                for m in Medication.objects.filter(patient=patient)
            ],
            conditions=[
                ConditionSpan(
                    c.code, c.onset_at, c.abatement_at, c.clinical_status, c.verification_status
                )
                for c in Condition.objects.filter(patient=patient)
            ],
            race=patient.race,
            reference=now,
        )
        twin = Twin.from_history(history)
        fc = twin.forecast(horizon_years=10.0)
        bands = np.stack(
            [np.stack([v.median, v.lo80, v.hi80, v.lo95, v.hi95]) for v in fc.variables.values()]
        )
        TwinSnapshot.objects.create(
            patient=patient,
            computed_at=now,
            reference_at=now,
            model_version="naive",
            inputs_sha256="-",
            fallback=twin.calibration.fallback,
            calibration=twin.calibration.to_dict(),
            variables=list(fc.variables),
            quantiles=[0.5, 0.1, 0.9, 0.025, 0.975],
            step_days=30.4375,
            n_times=fc.t_days.size,
            bands=bands.astype("<f4").tobytes(),
            risk={
                k: [x if np.isfinite(x) else None for x in v.tolist()] for k, v in fc.risk.items()
            },
        )
    return (time.perf_counter() - began) / len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--whatifs", type=int, default=5)
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the database for --sizes, then stop"
    )
    parser.add_argument(
        "--server-as-is",
        action="store_true",
        help="do not set WRITE_SETTINGS on the server for the runs",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ensure_database()

    import django

    django.setup()
    from django.core.management import call_command

    from patients.models import Patient

    call_command("migrate", verbosity=0)
    have = Patient.objects.count()
    if have < min(BASE_PATIENTS, max(sizes)):
        call_command(
            "generate_cohort",
            "--patients",
            str(min(BASE_PATIENTS, max(sizes)) - have),
            "--workers",
            "2",
            "--no-progress",
        )
    replicate(max(sizes))
    if args.prepare_only:
        return
    observations = int(psql("SELECT count(*) FROM patients_observation"))

    def clear() -> None:
        psql(f"TRUNCATE {', '.join(TWIN_TABLES)} RESTART IDENTITY CASCADE")
        from django.conf import settings

        from twinportal.celery import app

        with app.connection_for_write() as conn:
            prefix = settings.CELERY_QUEUE_PREFIX
            for q in (prefix, f"{prefix}-batch", f"{prefix}-interactive"):
                conn.default_channel.queue_purge(q)

    previous = None if args.server_as_is else apply_write_settings()
    try:
        report = _runs(args, sizes, clear)
    finally:
        if previous is not None:
            restore_settings(previous)
    server = (
        "as configured"
        if previous is None
        else ", ".join(f"`{k} = {v}`" for k, v in WRITE_SETTINGS.items())
        + " (README, production deployment; set for the runs and put back afterwards)"
    )
    _write_report(args, report, server, observations)


def _runs(args: argparse.Namespace, sizes: list[int], clear: Callable[[], None]) -> dict[str, Any]:
    from django.utils import timezone

    from models_engine.snapshot import model_version
    from twins.selectors import patients_due_for_recompute

    rows = []
    for n in sizes:
        clear()
        print(f"nightly run of {n} patients…", flush=True)
        rows.append(timed_run(n, args.concurrency, whatifs=args.whatifs if n == max(sizes) else 0))
        print(rows[-1], flush=True)
    # a later night: every fit stale, nothing else changed, backtests younger than four weeks kept
    print("second night of the largest size…", flush=True)
    second = timed_run(max(sizes), args.concurrency, stale_days=0)
    print(second, flush=True)
    due_began = time.perf_counter()
    n_due = len(
        list(
            patients_due_for_recompute(
                now=timezone.now(), stale_after_days=7, model_version=model_version()
            ).values_list("pk", flat=True)
        )
    )
    due_seconds = time.perf_counter() - due_began
    clear()
    per_patient = naive(args.naive_sample)
    return {
        "rows": rows,
        "second": second,
        "n_due": n_due,
        "due_seconds": due_seconds,
        "per_patient": per_patient,
    }


def _write_report(
    args: argparse.Namespace, report: dict[str, Any], server: str, observations: int
) -> None:
    from bench._report import write_section
    from patients.models import Patient
    from twins import services

    rows, second, per_patient = report["rows"], report["second"], report["per_patient"]
    n_due, due_seconds = report["n_due"], report["due_seconds"]
    naive_100k = per_patient * 100_000 / args.concurrency

    table = "\n".join(
        f"| {r['patients']:,} | {r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min) | "
        f"{r['per_second']:.0f} | {r['done']:,} / {r['skipped']:,} / {r['failed']:,} | "
        f"{r['duplicates']} | {r['peak_rss_mib']:.0f} MiB | {r['snapshot_mib']:.0f} MiB |"
        for r in rows
    )
    big = rows[-1]
    body = f"""
Database: `{DB_NAME}` with {Patient.objects.count():,} patients and {observations:,} observation rows
({BASE_PATIENTS:,} generated by `generate_cohort`, the rest SQL copies of them with values moved by
up to ±2 %). Workers: one `celery worker -Q batch -c {args.concurrency}` (prefork) and one
`-Q default,interactive -c 1`, single-threaded BLAS, chunks of {services.twin_config().chunk_size}
patients, each chunk read with four queries, calibrated and forecast as one batch and written in
one transaction. End to end means from the dispatcher's run record to the last chunk's commit:
reads, calibration, ten years of monthly bands (200 samples), PREVENT 10/30-year, each patient's
own last-year backtest, drift and risk alerts, writes. PostgreSQL write settings: {server}.

| patients | end to end | patients/s | done / skipped / failed | duplicate snapshots | peak worker RSS | snapshot table |
|---:|---:|---:|---|---:|---:|---:|
{table}

A later night at {second["patients"]:,} patients, every fit stale but no new data (backtests younger
than four weeks are kept, as in steady state): {second["seconds"]:.0f} s ({second["seconds"] / 60:.1f} min),
{second["per_second"]:.0f} patients/s, peak worker RSS {second["peak_rss_mib"]:.0f} MiB.

Naive way in the same run (one patient at a time: ORM reads, `Twin.from_history`, `Twin.forecast`
with PREVENT along the median, one `save()`; no backtest, no alerts, so it does less), timed on
{args.naive_sample} patients: {per_patient * 1000:.0f} ms per patient, so 100,000 patients on
{args.concurrency} cores would take about {naive_100k / 60:.0f} min
({naive_100k / big["seconds"]:.1f}x the batched run of the largest size, scaled to 100,000).

What-if comparisons (six plans) submitted during the {big["patients"]:,}-patient run: {big["whatifs"]}
ran; the longest wait before a worker started one was {big["whatif_start_max"]:.2f} s (median
{big["whatif_start_median"]:.2f} s), the longest from submission to result
{big["whatif_total_max"]:.1f} s, the batch workers holding both cores meanwhile.

The dispatcher's selection of patients due (no fit, changed record, stale fit or other model
version) over all {Patient.objects.count():,} patients: {due_seconds:.1f} s ({n_due:,} due after the
runs above).
"""
    write_section("twin_nightly", body)
    print(body)


if __name__ == "__main__":
    main()
