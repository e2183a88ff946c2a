"""The clinician's pages under load: My patients and the twin page through gunicorn, a six-plan what-if
through a real Celery worker, and the naive way (a DRF ``ModelSerializer`` page computing the twin
in the request).

Run: ``.venv/bin/python -m bench.pages_load [--patients 1000] [--observations 1000] [--clients 20]
[--seconds 60]``. It (re)creates a PostgreSQL database ``twinportal_bench_pages`` on 127.0.0.1,
migrates it, loads the patients with their readings (bulk inserts), fits every patient's twin
(``twins.services.snapshots_compute``, as the nightly run does; ``--fit N`` fits N and gives the
others copies of those snapshots, which the pages read the same way), starts gunicorn with the
production settings and a Celery worker on queues of its own, signs the clients in, and lets each
client open the list (a random page of 50) or a random patient's twin page in turn, with a think
time between pages. Then it runs six-plan what-ifs from the page, one at a time, timing submit to
result. Every answer is checked (status 200, the expected page). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
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

DB_NAME = "twinportal_bench_pages"
ROOT = Path(__file__).resolve().parent.parent
QUEUE_PREFIX = "bench-pages"
ENV = {
    "DJANGO_SETTINGS_MODULE": "twinportal.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": "redis://127.0.0.1:6379/11",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "TWINPORTAL_QUEUE_PREFIX": QUEUE_PREFIX,
    "TWINPORTAL_LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

# as the README's deployment section suggests for a web server
GUNICORN_WORKERS = 4
PASSWORD = secrets.token_urlsafe(16)
#: Readings per patient, by variable: home blood pressure and weight often, laboratory results less.
MIX = {
    "sbp": 0.3,
    "dbp": 0.3,
    "weight": 0.2,
    "hba1c": 0.06,
    "glucose": 0.06,
    "ldl": 0.04,
    "egfr": 0.04,
}
BASE = {"sbp": 138, "dbp": 84, "weight": 86, "hba1c": 6.4, "glucose": 118, "ldl": 125, "egfr": 78}
NOISE = {"sbp": 9, "dbp": 6, "weight": 1.0, "hba1c": 0.25, "glucose": 12, "ldl": 12, "egfr": 5}


def recreate_database() -> None:
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c"]
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
    subprocess.run([*psql, f"CREATE DATABASE {DB_NAME}"], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_cohort(n_patients: int, n_obs: int, rng: random.Random) -> list[int]:
    """Patients with ``n_obs`` readings each over eight years, hypertension, and a few drugs."""
    from patients import coding
    from patients.models import Condition, Medication, Observation, Patient

    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=8 * 365)
    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"PAGES-{i:05d}",
                given_name=rng.choice(["Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gita"]),
                family_name=f"Bench{i:05d}",
                sex="female" if i % 2 else "male",
                birth_date=dt.date(1945, 1, 1) + dt.timedelta(days=rng.randint(0, 40 * 365)),
            )
            for i in range(n_patients)
        ],
        batch_size=1000,
    )
    for p in patients:
        rows = []
        offset = {v: rng.gauss(0, NOISE[v] * 1.5) for v in BASE}
        for v, share in MIX.items():
            k = max(2, round(n_obs * share))
            var = coding.VARIABLE_BY_KEY[v]
            for j in range(k):
                when = now - span + span * (j + rng.random()) / k
                drift = (j / k) * (3 if v in ("sbp", "weight") else 0)
                value = BASE[v] + offset[v] + drift + rng.gauss(0, NOISE[v])
                rows.append(
                    Observation(
                        patient=p,
                        code=var.codes[0],
                        value=round(value, 2),
                        unit=var.unit,
                        effective_at=when,
                        category="vital-signs" if v in ("sbp", "dbp", "weight") else "laboratory",
                    )
                )
        Observation.objects.bulk_create(rows, batch_size=5000)
    Condition.objects.bulk_create(
        [
            Condition(patient=p, code="38341003", display="Hypertensive disorder (disorder)")
            for p in patients
        ],
        batch_size=1000,
    )
    Medication.objects.bulk_create(
        [
            Medication(
                patient=p,
                name="Ramipril 5 MG Oral Capsule",
                treatment_class="ace_inhibitor",
                start=now - dt.timedelta(days=rng.randint(200, 2000)),
            )
            for p in patients
        ],
        batch_size=1000,
    )
    return [p.pk for p in patients]


def fit(patient_ids: list[int], n_fit: int) -> float:
    """Fit the first ``n_fit`` patients in chunks; copy their snapshots to the rest. Seconds taken."""
    from twins import services
    from twins.models import TwinSnapshot, TwinState

    start = time.perf_counter()
    fitted = patient_ids[:n_fit]
    for i in range(0, len(fitted), 100):
        services.snapshots_compute(patient_ids=fitted[i : i + 100], trigger="bench")
    took = time.perf_counter() - start
    sources = list(TwinSnapshot.objects.filter(patient_id__in=fitted))
    for k, pid in enumerate(patient_ids[n_fit:]):
        src = sources[k % len(sources)]
        src.pk = None
        src.patient_id = pid
        src.run = None
        src.save()
        TwinState.objects.create(
            patient_id=pid,
            latest=src,
            last_fit_at=src.computed_at,
            model_version=src.model_version,
        )
    return took


@dataclass
class Timings:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"list": [], "twin": []})
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Client:
    """A signed-in browser without the browser: session and CSRF cookies sent by hand, because the
    production settings mark them Secure and this runs over plain HTTP on loopback."""

    def __init__(self, base: str, username: str) -> None:
        import requests

        self.base = base
        self.http = requests.Session()
        self.cookies: dict[str, str] = {}
        page = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the sign-in page"
        r = self.post(
            "/accounts/login/",
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        )
        assert r.status_code == 302 and "sessionid" in self.cookies, (
            f"sign-in failed: {r.status_code}"
        )

    def _header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, r: Any) -> Any:
        for c in r.cookies:
            self.cookies[c.name] = c.value
        return r

    def get(self, path: str) -> Any:
        return self._keep(
            self.http.get(
                self.base + path, headers=self._header(), allow_redirects=False, timeout=30
            )
        )

    def post(self, path: str, data: dict[str, str]) -> Any:
        return self._keep(
            self.http.post(
                self.base + path,
                data=data,
                headers={**self._header(), "Referer": self.base + path},
                allow_redirects=False,
                timeout=30,
            )
        )


def load_phase(
    base: str,
    username: str,
    patient_ids: list[int],
    clients: int,
    seconds: float,
    think: float,
    naive: bool = False,
) -> Timings:
    timings = Timings()
    pages = max(1, (len(patient_ids) + 49) // 50)
    stop_at: list[float] = []
    # the clock starts when every client has signed in (the action runs before any is released)
    ready = threading.Barrier(
        clients + 1, action=lambda: stop_at.append(time.monotonic() + seconds)
    )

    def run(seed: int) -> None:
        rng = random.Random(seed)
        client = Client(base, username)
        ready.wait()
        kind_cycle = ["naive"] if naive else ["list", "twin"]
        n = seed
        while time.monotonic() < stop_at[0]:
            kind = kind_cycle[n % len(kind_cycle)]
            n += 1
            path = (
                f"/?page={rng.randint(1, pages)}"
                if kind == "list"
                else f"/patients/{rng.choice(patient_ids)}/"
                if kind == "twin"
                else f"/naive/{rng.choice(patient_ids)}/"
            )
            t0 = time.perf_counter()
            try:
                r = client.get(path)
            except Exception as exc:  # a timeout under overload counts as an error, not a crash
                with timings.lock:
                    timings.errors.append(f"{kind} {type(exc).__name__}")
                continue
            took = time.perf_counter() - t0
            marker = {"list": 'id="patient-list"', "twin": 'id="twin-chart-data"'}.get(
                kind, '"risk"'
            )
            ok = r.status_code == 200 and marker in r.text
            with timings.lock:
                timings.latencies.setdefault(kind, []).append(took)
                if not ok:
                    timings.errors.append(f"{kind} {r.status_code}")
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    for t in threads:
        t.join()
    return timings


SIX_PLANS = [
    ("ACE inhibitor", "ace_inhibitor", ""),
    ("Thiazide", "thiazide", ""),
    ("Statin", "statin", "high"),
    ("Metformin", "metformin", ""),
    ("Lose 5 kg", "weight_loss_5kg", ""),
    ("Less salt", "sodium_reduction", ""),
]


def whatif_phase(base: str, username: str, patient_ids: list[int], runs: int) -> list[float]:
    """Submit six plans from the page and poll the status address until the result is stored."""
    client = Client(base, username)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    times = []
    rng = random.Random(7)
    for _ in range(runs):
        pid = rng.choice(patient_ids)
        form = client.get(f"/patients/{pid}/whatif/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token
        data = {"csrfmiddlewaretoken": token.group(1)}
        for i, (name, key, intensity) in enumerate(SIX_PLANS):
            data |= {
                f"plan{i}-name": name,
                f"plan{i}-item0_intervention": key,
                f"plan{i}-item0_intensity": intensity,
                f"plan{i}-item0_dose": "1",
                f"plan{i}-item0_start": today,
            }
        t0 = time.perf_counter()
        r = client.post(f"/patients/{pid}/whatif/", data)
        assert r.status_code == 302, f"what-if not accepted: {r.status_code}"
        run_path = r.headers["Location"]
        while True:
            s = client.get(run_path + "status/").json()
            if s["done"]:
                break
            time.sleep(0.05)
        times.append(time.perf_counter() - t0)
        assert s["status"] == "succeeded", s
        page = client.get(run_path)
        assert page.text.count("<tr>") >= 8, "the outcome table has current care and six plans"
    return times


def naive_phase(patient_ids: list[int], n: int) -> list[float]:
    """The naive page: every reading through a ModelSerializer and the twin fitted in the request."""
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer

    from models_engine.snapshot import snapshot_batch
    from patients.models import Observation, Patient
    from twins import selectors

    class ObservationSerializer(serializers.ModelSerializer[Observation]):
        class Meta:
            model = Observation
            fields = "__all__"

    class PatientSerializer(serializers.ModelSerializer[Patient]):
        observations = ObservationSerializer(many=True)

        class Meta:
            model = Patient
            fields = "__all__"

    times = []
    for pid in random.Random(3).sample(patient_ids, n):
        t0 = time.perf_counter()
        patient = Patient.objects.prefetch_related("observations").get(pk=pid)
        body = JSONRenderer().render(PatientSerializer(patient).data)
        history = selectors.twin_inputs_for([pid], reference=dt.datetime.now(dt.UTC))[0].history
        snapshot_batch([history], with_backtest=[True])
        times.append(time.perf_counter() - t0)
        assert body
    return times


def serve(env: dict[str, str], app: str, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn on a free loopback port, ready to answer."""
    import requests

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(GUNICORN_WORKERS),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(base + "/accounts/login/", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    return proc, base


def naive_load_phase(env: dict[str, str], ids: list[int], args: Any) -> Timings:
    """The naive page (``bench.pages_naive``) under the same clients and think time."""
    with open(ROOT / "var" / "bench_pages_naive.log", "w", encoding="utf-8") as log:
        proc, base = serve(env, "bench.pages_naive:application", log)
    try:
        return load_phase(
            base, "bench.gp", ids, args.clients, args.naive_seconds, args.think, naive=True
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=1000, help="readings per patient")
    parser.add_argument("--fit", type=int, default=None, help="patients fitted (default: all)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between pages")
    parser.add_argument("--whatifs", type=int, default=10)
    parser.add_argument("--naive", type=int, default=10, help="naive page requests, one at a time")
    parser.add_argument(
        "--naive-seconds", type=float, default=30.0, help="the naive page under the clients"
    )
    parser.add_argument("--no-report", action="store_true", help="print only (smoke runs)")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        help="before measuring, wait (up to 30 min) until the 1-minute load average is below this, "
        "so loading can run niced beside other work and the measurement has the machine",
    )
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="measure on the database a previous run loaded (same --patients and --observations)",
    )
    args = parser.parse_args()
    rng = random.Random(1)
    if not args.reuse_db:
        recreate_database()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import user_create
    from bench._report import write_section
    from patients.models import CareTeam, Observation
    from twinportal.celery import app as celery_app

    # the production settings serve hashed static file names from a manifest
    call_command("collectstatic", interactive=False, verbosity=0)
    fit_n = args.patients if args.fit is None else min(args.fit, args.patients)
    if args.reuse_db:
        from accounts.models import User
        from patients.models import Patient

        ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
        load_s = fit_s = 0.0
        user = User.objects.get(username="bench.gp")
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    else:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        ids = load_cohort(args.patients, args.observations, rng)
        load_s = time.perf_counter() - t0
        fit_s = fit(ids, fit_n)
        user = user_create(username="bench.gp", password=PASSWORD, role="clinician")
        team = CareTeam.objects.create(name="Bench practice")
        team.members.add(user)
        team.patients.add(*ids)
    n_obs = Observation.objects.count()
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    connection.close()
    print(
        f"loaded {args.patients} patients, {n_obs:,} readings in {load_s:.0f} s; fitted {fit_n} in {fit_s:.0f} s",
        flush=True,
    )

    if args.quiet_load is not None:
        deadline = time.monotonic() + 1800
        while os.getloadavg()[0] >= args.quiet_load and time.monotonic() < deadline:
            time.sleep(10)
        # measure at normal priority even when the loading ran under `nice`
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    load_before = os.getloadavg()
    port = free_port()
    log_path = ROOT / "var" / "bench_pages_load.log"
    log_path.parent.mkdir(exist_ok=True)
    env = {**os.environ}
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "twinportal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(GUNICORN_WORKERS),
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=env,
            stderr=log,
            start_new_session=True,
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "twinportal",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                f"{QUEUE_PREFIX},{QUEUE_PREFIX}-batch,{QUEUE_PREFIX}-interactive",
                "-n",
                f"bench-pages-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stderr=log,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        for _ in range(200):
            try:
                if requests.get(base + "/accounts/login/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still loading the app
                time.sleep(0.2)
        # warm both workers' caches (templates, the treatment catalogue) before measuring
        warm = Client(base, "bench.gp")
        for pid in ids[:4]:
            warm.get(f"/patients/{pid}/")
            warm.get("/")
        timings = load_phase(base, "bench.gp", ids, args.clients, args.seconds, args.think)
        whatifs = whatif_phase(base, "bench.gp", ids, args.whatifs)
    finally:
        for proc in (server, worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (server, worker):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        with celery_app.connection_for_write() as conn:
            for q in (QUEUE_PREFIX, f"{QUEUE_PREFIX}-batch", f"{QUEUE_PREFIX}-interactive"):
                conn.default_channel.queue_purge(q)
    naive = naive_phase(ids, min(args.naive, len(ids)))
    naive_load = naive_load_phase(env, ids, args)

    total = sum(len(v) for v in timings.latencies.values())
    rows = []
    for kind, label in (
        ("list", "My patients (`/`, a random page of 50)"),
        ("twin", "Twin page (`/patients/<id>/`)"),
    ):
        lat = [x * 1000 for x in timings.latencies[kind]]
        rows.append(
            f"| {label} | {len(lat):,} | {pct(lat, 50):.0f} | {pct(lat, 95):.0f} | {pct(lat, 99):.0f} | {max(lat):.0f} |"
        )
    naive_ms = [x * 1000 for x in naive]
    naive_load_ms = [x * 1000 for x in naive_load.latencies.get("naive", [])]
    body = (
        f"{args.patients:,} patients with {n_obs:,} readings ({args.observations:,} each, seven twin "
        f"variables over eight years) in PostgreSQL, every patient's twin fitted "
        f"({fit_n:,} by `snapshots_compute`"
        + (", the others given copies of those snapshots" if fit_n < args.patients else "")
        + f"). gunicorn with the production settings ({GUNICORN_WORKERS} sync workers) and one Celery "
        f"worker on the same {os.cpu_count()}-core machine as the database, Redis and the load "
        f"generator. {args.clients} signed-in clients on loopback (Python threads with `requests`), "
        f"each opening the list or a random patient's twin page in turn with a think time of "
        f"{args.think:g} s on average, for {args.seconds:g} s: {total:,} pages, "
        f"{total / args.seconds:.1f} pages/s, {len(timings.errors)} errors. Times are of the HTML "
        "(static files, plotly.js included, are cached by a browser after the first page). "
        f"Load average when the measurement started: {load_before[0]:.2f}, {load_before[1]:.2f}, "
        f"{load_before[2]:.2f}.\n\n"
        "| page | requests | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n\n"
        f"A six-plan what-if from the page (submit, queued on the interactive queue, the worker fits "
        f"the twin to the current record and compares the plans on common draws, the page polls its "
        f"status address): {len(whatifs)} runs one after another, submit to stored result "
        f"median {statistics.median(whatifs):.2f} s, slowest {max(whatifs):.2f} s.\n\n"
        f"The naive way, a DRF `ModelSerializer` page of the patient with every reading nested and the "
        f"twin fitted in the request (calibration, forecast, risk and backtest for one patient), one "
        f"request at a time without other load: {len(naive)} requests, median "
        f"{statistics.median(naive_ms):.0f} ms, slowest {max(naive_ms):.0f} ms per page, so 20 "
        f"clients would queue behind each other at about {2 / statistics.median(naive):.1f} pages/s "
        f"on two cores. Under the same {args.clients} clients and think time, through gunicorn "
        f"(`bench/pages_naive.py`, the project's URLs plus the naive page), for "
        f"{args.naive_seconds:g} s: {len(naive_load.latencies.get('naive', [])):,} pages, "
        f"p50 {pct(naive_load_ms, 50):.0f} ms, p95 {pct(naive_load_ms, 95):.0f} ms, "
        f"max {max(naive_load_ms, default=float('nan')):.0f} ms, {len(naive_load.errors)} errors.\n"
    )
    print(body)
    if timings.errors:
        print("errors:", timings.errors[:10])
    if not args.no_report:
        write_section("pages_load", body)


if __name__ == "__main__":
    main()
