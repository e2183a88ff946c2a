"""Writes of twin results: recalibration requests, snapshots, alerts, recompute runs, what-if runs.

Every piece of queued work is a row before it is a Celery message (``PendingRecalibration``,
``RecomputeChunk``, ``WhatIfRun``): a write commits even when Redis is down, and the sweeper
(``twin_sweep``, every minute) queues what has no message or whose message was lost. Results are
written in one transaction per batch, guarded by row locks and unique constraints, so running any
task twice writes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from audit import recorder
from models_engine.calibration import calibrate
from models_engine.forecast import BATCH_QUANTILES, FORECAST_VARIABLES
from models_engine.history import VARIABLE_UNITS
from models_engine.snapshot import (
    SNAPSHOT_STEP_DAYS,
    band_at,
    model_version,
    risk_thresholds,
    snapshot_batch,
)
from models_engine.snapshot import (
    TwinSnapshot as EngineSnapshot,
)
from models_engine.treatments import PlanItem, label_for
from models_engine.whatif import CURRENT_CARE, MAX_PLANS, compare_plans
from patients import selectors as patient_selectors
from patients.models import Patient
from twinportal.celery import queue_task
from twins import selectors
from twins.models import (
    PendingRecalibration,
    RecomputeChunk,
    RecomputeRun,
    TaskState,
    TwinAlert,
    TwinSnapshot,
    TwinState,
    WhatIfRun,
)

logger = logging.getLogger(__name__)

_DAYS_PER_YEAR = 365.25
#: A patient's own backtest (the held-out last year) is recomputed at most this often.
#: Who the access log names for the twin's own reads of patients' records (background work).
TWIN_ACTOR = "system:twin-recompute"
WHATIF_ACTOR = "system:twin-whatif"

BACKTEST_KEEP_DAYS = 28


@dataclass(frozen=True)
class TwinConfig:
    """Operational settings (``TWINPORTAL_TWIN`` in settings, each from an environment variable)."""

    quiet_seconds: int
    max_wait_seconds: int
    stale_after_days: int
    chunk_size: int
    lease_seconds: int
    whatif_lease_seconds: int
    max_attempts: int


def twin_config() -> TwinConfig:
    raw: Mapping[str, int] = settings.TWINPORTAL_TWIN
    return TwinConfig(**raw)


def _send(task: Any, *, args: list[object], countdown: float | None = None) -> str | None:
    """Queue a task; ``None`` when the broker cannot be reached (the row stays for the sweeper)."""
    return queue_task(
        task,
        args=args,
        countdown=countdown,
        recovery="the sweeper will queue it when the broker is back",
    )


# Recalibration after new data (debounced, kept in PostgreSQL until done).


def twin_recalibration_request(
    *, patient_ids: Iterable[int], reason: str, now: dt.datetime | None = None
) -> None:
    """Ask for these patients' twins to be recalibrated after new data.

    Call it inside the transaction that wrote the data: the request commits with it. Requests within
    the quiet period move the due time on, so a burst of readings causes one fit (never later than
    the longest wait after the first request). The message is queued after commit; if the broker is
    down the request waits in the table for the sweeper.
    """
    ids = sorted(set(patient_ids))
    if not ids:
        return
    now = now or timezone.now()
    cfg = twin_config()
    due = now + dt.timedelta(seconds=cfg.quiet_seconds)
    with transaction.atomic():
        TwinState.objects.bulk_create(
            [TwinState(patient_id=pid, data_changed_at=now) for pid in ids],
            update_conflicts=True,
            unique_fields=["patient"],
            update_fields=["data_changed_at"],
        )
        existing = set(
            PendingRecalibration.objects.select_for_update()
            .filter(patient_id__in=ids)
            .values_list("patient_id", flat=True)
        )
        if existing:
            PendingRecalibration.objects.filter(patient_id__in=existing).update(
                due_at=due, requests=F("requests") + 1
            )
        PendingRecalibration.objects.bulk_create(
            [
                PendingRecalibration(
                    patient_id=pid, reason=reason[:40], first_requested_at=now, due_at=due
                )
                for pid in ids
                if pid not in existing
            ],
            ignore_conflicts=True,
        )
        transaction.on_commit(lambda: _queue_recalibrations(ids))


def _queue_recalibrations(patient_ids: Sequence[int], *, now: dt.datetime | None = None) -> int:
    """Queue a message for each pending request that has none; returns how many were queued."""
    from twins.tasks import twin_recalibrate as recalibrate_task

    now = now or timezone.now()
    queued = 0
    for pending in PendingRecalibration.objects.filter(
        patient_id__in=list(patient_ids), enqueued_at__isnull=True
    ):
        countdown = max(0.0, (pending.due_at - now).total_seconds())
        # claim the row first so two callers do not both queue it
        claimed = PendingRecalibration.objects.filter(
            pk=pending.pk, enqueued_at__isnull=True
        ).update(enqueued_at=now)
        if not claimed:
            continue
        if _send(recalibrate_task, args=[pending.patient_id], countdown=countdown) is None:
            PendingRecalibration.objects.filter(pk=pending.pk).update(enqueued_at=None)
            break  # the broker is down: the rest would fail the same way
        queued += 1
    return queued


@dataclass(frozen=True)
class RecalibrationOutcome:
    """``deferred_seconds`` > 0: more data is still arriving, run again then. Else what was done."""

    deferred_seconds: float = 0.0
    counts: ComputeCounts | None = None


def twin_recalibrate(
    *, patient_id: int, task_id: str = "", now: dt.datetime | None = None
) -> RecalibrationOutcome:
    """Recalibrate one patient if a request is due; a message without a request does nothing."""
    now = now or timezone.now()
    cfg = twin_config()
    pending = PendingRecalibration.objects.filter(patient_id=patient_id).first()
    if pending is None:
        return RecalibrationOutcome()
    latest_allowed = pending.first_requested_at + dt.timedelta(seconds=cfg.max_wait_seconds)
    run_at = min(pending.due_at, latest_allowed)
    if run_at > now:
        return RecalibrationOutcome(deferred_seconds=(run_at - now).total_seconds())
    PendingRecalibration.objects.filter(pk=pending.pk).update(attempts=F("attempts") + 1)
    with transaction.atomic():
        counts = snapshots_compute(
            patient_ids=[patient_id], now=now, task_id=task_id, trigger=pending.reason
        )
        # done, unless another request came in while computing: then it stays, to be queued again
        finished = PendingRecalibration.objects.filter(
            pk=pending.pk, due_at=pending.due_at
        ).delete()[0]
        if not finished:
            PendingRecalibration.objects.filter(pk=pending.pk).update(
                enqueued_at=None, first_requested_at=now, attempts=0
            )
            transaction.on_commit(lambda: _queue_recalibrations([patient_id]))
    return RecalibrationOutcome(counts=counts)


def twin_failure_record(
    *, patient_ids: Iterable[int], error: str, now: dt.datetime | None = None
) -> None:
    """Leave a visible failed state on each patient's twin (the admin and the API show it)."""
    now = now or timezone.now()
    ids = list(patient_ids)
    TwinState.objects.bulk_create([TwinState(patient_id=pid) for pid in ids], ignore_conflicts=True)
    TwinState.objects.filter(patient_id__in=ids).update(last_error=error[:4000], failed_at=now)
    PendingRecalibration.objects.filter(patient_id__in=ids).update(last_error=error[:4000])


# Computing and storing snapshots.


@dataclass
class ComputeCounts:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    alerts: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)
    already_done: bool = False


def _engine(
    histories: Sequence[Any], backtest: Sequence[bool]
) -> tuple[list[EngineSnapshot | None], list[str]]:
    """Snapshots of a batch; if the batch fails, patient by patient so one bad record fails alone."""
    try:
        return list(snapshot_batch(histories, with_backtest=backtest)), [""] * len(histories)
    except Exception:
        logger.exception("batch snapshot failed; computing patient by patient")
    results: list[EngineSnapshot | None] = []
    errors: list[str] = []
    for h, b in zip(histories, backtest, strict=True):
        try:
            results.append(snapshot_batch([h], with_backtest=b)[0])
            errors.append("")
        except Exception as exc:
            results.append(None)
            errors.append(f"{type(exc).__name__}: {exc}"[:2000])
    return results, errors


def _bands_bytes(snap: EngineSnapshot) -> bytes:
    stacked = np.stack([snap.bands[v] for v in FORECAST_VARIABLES]).astype("<f4")
    return stacked.tobytes()


def _fmt(value: float, variable: str) -> str:
    return f"{value:.1f}" if variable in ("hba1c", "weight") else f"{value:.0f}"


def _drift_alerts(
    prev: TwinSnapshot, readings: Sequence[selectors.Reading], now: dt.datetime
) -> list[TwinAlert]:
    """Readings taken after ``prev``'s fit that fall outside its 95 % band of a new reading."""
    new = [r for r in readings if prev.reference_at < r.effective_at <= now]
    if not new:
        return []
    bands = prev.band_array()
    t_years = prev.t_years
    index = {v: i for i, v in enumerate(prev.variables)}
    alerts: list[TwinAlert] = []
    for variable in sorted({r.variable for r in new} & set(index)):
        mine = [r for r in new if r.variable == variable]
        when = np.array(
            [(r.effective_at - prev.reference_at).total_seconds() / 86400.0 for r in mine]
        )
        at = band_at(t_years, bands[index[variable]], when / _DAYS_PER_YEAR)
        for k, r in enumerate(mine):
            median, lo80, hi80, lo95, hi95 = (float(x) for x in at[:, k])
            if math.isnan(lo95) or lo95 <= r.value <= hi95:
                continue
            unit = VARIABLE_UNITS.get(variable, "")
            label = variable.upper() if len(variable) <= 4 else variable.replace("_", " ")
            alerts.append(
                TwinAlert(
                    patient_id=prev.patient_id,
                    kind=TwinAlert.Kind.DRIFT,
                    dedupe_key=f"drift:{r.observation_id}",
                    snapshot=prev,
                    observation_id=r.observation_id,
                    variable=variable,
                    message=(
                        f"{label} {_fmt(r.value, variable)} {unit} on {r.effective_at:%d %b %Y} "
                        f"is {'above' if r.value > hi95 else 'below'} the forecast's 95 % band "
                        f"({_fmt(lo95, variable)}-{_fmt(hi95, variable)})"
                    )[:255],
                    evidence={
                        "value": r.value,
                        "unit": unit,
                        "effective_at": r.effective_at.isoformat(),
                        "predicted_median": median,
                        "band80": [lo80, hi80],
                        "band95": [lo95, hi95],
                        "forecast_snapshot_id": prev.pk,
                        "forecast_computed_at": prev.computed_at.isoformat(),
                    },
                    created_at=now,
                )
            )
    return alerts


def _risk_value(risk: Mapping[str, Any] | None, outcome: str, horizon: int) -> float | None:
    if not risk:
        return None
    table = risk.get("ten_year" if horizon == 10 else "thirty_year") or {}
    value = table.get(outcome)
    return float(value) if value is not None else None


def _risk_alert(
    snapshot: TwinSnapshot, prev: TwinSnapshot | None, now: dt.datetime
) -> TwinAlert | None:
    """The highest alerting threshold that the risk now reaches and the previous fit did not."""
    crossed = None
    for t in risk_thresholds():
        if not t.alert:
            continue
        new = _risk_value(snapshot.risk, t.outcome, t.horizon)
        old = _risk_value(prev.risk, t.outcome, t.horizon) if prev else None
        reached = new is not None and new >= t.threshold
        if reached and (old is None or old < t.threshold):
            crossed = (t, new, old)  # thresholds come in ascending order: the highest wins
    if crossed is None:
        return None
    t, new, old = crossed
    since = f"from {old:.1%} " if old is not None else ""
    return TwinAlert(
        patient_id=snapshot.patient_id,
        kind=TwinAlert.Kind.RISK,
        dedupe_key=f"risk:{snapshot.patient_id}:{t.outcome}:{t.horizon}:{t.threshold}:"
        f"{prev.pk if prev else 'first'}",
        snapshot=snapshot,
        variable=t.outcome,
        message=(
            f"{t.horizon}-year {t.outcome.upper()} risk {since}to {new:.1%}: "
            f"at or above {t.threshold:.1%} ({t.label})"
        )[:255],
        evidence={
            "outcome": t.outcome,
            "horizon_years": t.horizon,
            "risk": new,
            "previous_risk": old,
            "previous_snapshot_id": prev.pk if prev else None,
            "threshold": t.threshold,
            "category": t.label,
            "threshold_source": t.source,
            "inputs": (snapshot.risk or {}).get("inputs", {}),
        },
        created_at=now,
    )


def _backtest_still_good(
    prev: TwinSnapshot, *, patient_id: int, now: dt.datetime, version: str
) -> bool:
    """Whether a fit may keep the previous snapshot's backtest instead of recomputing it.

    A patient's own backtest (its held-out last year) moves little from night to night, so it is
    refreshed on a cycle of ``BACKTEST_KEEP_DAYS``: each patient on its own day of the cycle, so
    a twenty-eighth of the patients are backtested each night rather than all of them at once.
    """
    if prev.model_version != version or prev.backtest_at is None:
        return False
    if prev.backtest_at < now - dt.timedelta(days=BACKTEST_KEEP_DAYS):
        return False
    its_day = (patient_id + now.toordinal()) % BACKTEST_KEEP_DAYS == 0
    return not (its_day and prev.backtest_at.date() < now.date())


def snapshots_compute(
    *,
    patient_ids: Sequence[int],
    now: dt.datetime | None = None,
    task_id: str = "",
    trigger: str = "",
    run: RecomputeRun | None = None,
    chunk_id: int | None = None,
    stale_after_days: int | None = None,
    force: bool = False,
) -> ComputeCounts:
    """Fit, forecast and assess these patients as one batch and store the results in one transaction.

    A patient whose record rows and model version are those of a snapshot newer than
    ``stale_after_days`` is skipped (unless ``force``). New readings are checked against the
    previous snapshot's bands (drift alerts) and the new risk against the thresholds (risk alerts).
    With ``chunk_id`` the chunk row is locked and marked done in the same transaction, so a chunk
    computed twice (a lost worker's message redelivered) is written once.
    """
    now = now or timezone.now()
    cfg = twin_config()
    stale_days = cfg.stale_after_days if stale_after_days is None else stale_after_days
    version = model_version()
    latest = selectors.latest_snapshots(patient_ids)
    # readings are needed only where a previous forecast can be checked against them
    inputs = selectors.twin_inputs_for(
        patient_ids,
        reference=now,
        readings_after={pid: prev.reference_at for pid, prev in latest.items()},
    )
    recorder.system_access(
        actor_name=TWIN_ACTOR,
        resource="twins.services.snapshots_compute",
        patient_ids=[ti.patient_id for ti in inputs],
        write=False,
    )
    fresh_after = now - dt.timedelta(days=stale_days)
    todo: list[selectors.TwinInput] = []
    skipped: list[selectors.TwinInput] = []
    for ti in inputs:
        prev = latest.get(ti.patient_id)
        unchanged = (
            prev is not None
            and prev.inputs_sha256 == ti.inputs_sha256
            and prev.model_version == version
            and prev.computed_at >= fresh_after
        )
        # a forecast of someone who has died helps nobody
        (skipped if (unchanged and not force) or ti.deceased else todo).append(ti)
    kept_backtests = {
        ti.patient_id: prev
        for ti in todo
        if (prev := latest.get(ti.patient_id)) is not None
        and _backtest_still_good(prev, patient_id=ti.patient_id, now=now, version=version)
    }
    results, errors = _engine(
        [ti.history for ti in todo], [ti.patient_id not in kept_backtests for ti in todo]
    )
    counts = ComputeCounts(skipped=len(skipped))

    with transaction.atomic():
        if chunk_id is not None:
            chunk = RecomputeChunk.objects.select_for_update().get(pk=chunk_id)
            if chunk.status == TaskState.SUCCEEDED:
                return ComputeCounts(already_done=True)
        rows: list[TwinSnapshot] = []
        written: list[tuple[selectors.TwinInput, TwinSnapshot]] = []
        failed_ids: list[int] = []
        for ti, snap, err in zip(todo, results, errors, strict=True):
            if snap is None:
                failed_ids.append(ti.patient_id)
                counts.errors.append({"patient_id": ti.patient_id, "error": err})
                continue
            kept = kept_backtests.get(ti.patient_id)
            row = TwinSnapshot(
                patient_id=ti.patient_id,
                run=run,
                computed_at=now,
                reference_at=now,
                data_until=ti.data_until,
                model_version=version,
                inputs_sha256=ti.inputs_sha256,
                task_id=task_id,
                trigger=trigger[:40],
                fallback=snap.fallback,
                notes=list(snap.notes),
                calibration=snap.calibration.to_dict(),
                variables=list(FORECAST_VARIABLES),
                quantiles=list(BATCH_QUANTILES),
                step_days=SNAPSHOT_STEP_DAYS,
                n_times=int(snap.t_years.size),
                bands=_bands_bytes(snap),
                risk=snap.risk.to_dict() if snap.risk else None,
                backtest=kept.backtest if kept else snap.backtest,
                backtest_at=kept.backtest_at if kept else now,
            )
            rows.append(row)
            written.append((ti, row))
        TwinSnapshot.objects.bulk_create(rows, batch_size=500)
        alerts: list[TwinAlert] = []
        for ti, row in written:
            prev = latest.get(ti.patient_id)
            if prev is not None:
                alerts.extend(_drift_alerts(prev, ti.readings, now))
            risk_alert = _risk_alert(row, prev, now)
            if risk_alert is not None:
                alerts.append(risk_alert)
        TwinAlert.objects.bulk_create(alerts, ignore_conflicts=True, batch_size=500)
        TwinState.objects.bulk_create(
            [
                TwinState(
                    patient_id=row.patient_id,
                    latest=row,
                    last_fit_at=now,
                    model_version=version,
                    last_error="",
                    failed_at=None,
                )
                for row in rows
            ],
            update_conflicts=True,
            unique_fields=["patient"],
            update_fields=["latest", "last_fit_at", "model_version", "last_error", "failed_at"],
            batch_size=1000,
        )
        if skipped:
            # nothing new in the record: a change request made before this fit is answered
            TwinState.objects.filter(
                patient_id__in=[ti.patient_id for ti in skipped], data_changed_at__lte=now
            ).update(data_changed_at=None)
        if failed_ids:
            message = "; ".join(str(e["error"]) for e in counts.errors)
            twin_failure_record(patient_ids=failed_ids, error=message, now=now)
        counts.done = len(rows)
        counts.failed = len(failed_ids)
        counts.alerts = len(alerts)
        if chunk_id is not None:
            RecomputeChunk.objects.filter(pk=chunk_id).update(
                status=TaskState.SUCCEEDED, finished_at=timezone.now(), error=""
            )
            assert run is not None
            _run_add(run_id=run.pk, counts=counts)
    return counts


def _run_add(*, run_id: int, counts: ComputeCounts) -> None:
    """Add a chunk's counts to its run (inside the chunk's transaction) and close the run when
    every chunk has finished. The run row is locked, so concurrent chunks close it exactly once."""
    run = RecomputeRun.objects.select_for_update().get(pk=run_id)
    run.patients_done += counts.done
    run.patients_skipped += counts.skipped
    run.patients_failed += counts.failed
    if counts.errors:
        run.errors = [*run.errors, *counts.errors][:1000]
    open_chunks = (
        RecomputeChunk.objects.filter(run_id=run_id)
        .exclude(status__in=[TaskState.SUCCEEDED, TaskState.FAILED])
        .exists()
    )
    if not open_chunks:
        run.finished_at = timezone.now()
        run.status = (
            RecomputeRun.Status.COMPLETED_WITH_FAILURES
            if run.patients_failed
            else RecomputeRun.Status.SUCCEEDED
        )
    run.save()


# Recompute runs (the nightly dispatcher fans out chunks).


def recompute_run_start(
    *,
    kind: str = RecomputeRun.Kind.NIGHTLY,
    triggered_by: str = "system:nightly",
    task_id: str = "",
    now: dt.datetime | None = None,
    stale_after_days: int | None = None,
    chunk_size: int | None = None,
    patient_ids: Sequence[int] | None = None,
) -> RecomputeRun:
    """Select the patients due (or the given ones), record a run with its chunks and queue them."""
    now = now or timezone.now()
    cfg = twin_config()
    stale_days = cfg.stale_after_days if stale_after_days is None else stale_after_days
    size = chunk_size or cfg.chunk_size
    version = model_version()
    if patient_ids is None:
        ids = list(
            selectors.patients_due_for_recompute(
                now=now, stale_after_days=stale_days, model_version=version
            ).values_list("pk", flat=True)
        )
    else:
        ids = sorted(set(patient_ids))
    with transaction.atomic():
        run = RecomputeRun.objects.create(
            kind=kind,
            model_version=version,
            stale_after_days=stale_days,
            chunk_size=size,
            triggered_by=triggered_by,
            task_id=task_id,
            started_at=now,
            patients_total=len(ids),
        )
        if not ids:
            run.status = RecomputeRun.Status.SUCCEEDED
            run.finished_at = now
            run.save(update_fields=["status", "finished_at"])
            return run
        RecomputeChunk.objects.bulk_create(
            [
                RecomputeChunk(run=run, index=k, patient_ids=ids[start : start + size])
                for k, start in enumerate(range(0, len(ids), size))
            ]
        )
        transaction.on_commit(lambda: _queue_chunks(run_id=run.pk))
    logger.info("recompute run %s: %s patients in chunks of %s", run.pk, len(ids), size)
    return run


def _queue_chunks(*, run_id: int | None = None, chunk_ids: Sequence[int] | None = None) -> int:
    from twins.tasks import twin_recompute_chunk as chunk_task

    qs = RecomputeChunk.objects.filter(status__in=[TaskState.PENDING, TaskState.RUNNING])
    qs = qs.filter(run_id=run_id) if run_id is not None else qs.filter(pk__in=chunk_ids or [])
    queued = 0
    for chunk_id in qs.order_by("pk").values_list("pk", flat=True):
        if _send(chunk_task, args=[chunk_id]) is None:
            break
        RecomputeChunk.objects.filter(pk=chunk_id).update(enqueued_at=timezone.now())
        queued += 1
    return queued


def recompute_chunk_execute(*, chunk_id: int, task_id: str = "") -> ComputeCounts:
    """Compute one chunk of a run (a chunk already done is left alone)."""
    chunk = RecomputeChunk.objects.select_related("run").get(pk=chunk_id)
    if chunk.status in (TaskState.SUCCEEDED, TaskState.FAILED):
        return ComputeCounts(already_done=True)
    now = timezone.now()
    RecomputeChunk.objects.filter(pk=chunk_id).update(
        status=TaskState.RUNNING, claimed_at=now, attempts=F("attempts") + 1, task_id=task_id
    )
    return snapshots_compute(
        patient_ids=chunk.patient_ids,
        now=now,
        task_id=task_id,
        trigger=chunk.run.kind,
        run=chunk.run,
        chunk_id=chunk.pk,
        stale_after_days=chunk.run.stale_after_days,
    )


def recompute_chunk_fail(*, chunk_id: int, error: str) -> None:
    """A chunk that kept failing: its patients count as failed and the run can close."""
    with transaction.atomic():
        chunk = RecomputeChunk.objects.select_for_update().get(pk=chunk_id)
        if chunk.status in (TaskState.SUCCEEDED, TaskState.FAILED):
            return
        chunk.status = TaskState.FAILED
        chunk.error = error[:4000]
        chunk.finished_at = timezone.now()
        chunk.save(update_fields=["status", "error", "finished_at"])
        ids = list(chunk.patient_ids)
        _run_add(
            run_id=chunk.run_id,
            counts=ComputeCounts(
                failed=len(ids),
                errors=[{"patient_id": pid, "error": error[:500]} for pid in ids[:20]],
            ),
        )
        twin_failure_record(patient_ids=ids, error=error)


# The sweeper: queue what has no message, or whose message was lost.


def twin_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Queue recalibrations, chunks and what-ifs that have no live message. Returns counts."""
    now = now or timezone.now()
    cfg = twin_config()
    lease = now - dt.timedelta(seconds=cfg.lease_seconds)
    recal_ids = list(
        PendingRecalibration.objects.filter(attempts__lt=cfg.max_attempts)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=lease))
        .values_list("patient_id", flat=True)[:5000]
    )
    PendingRecalibration.objects.filter(patient_id__in=recal_ids).update(enqueued_at=None)
    recal = _queue_recalibrations(recal_ids, now=now)
    stuck = list(
        RecomputeChunk.objects.filter(status__in=[TaskState.PENDING, TaskState.RUNNING])
        .filter(
            Q(enqueued_at__isnull=True)
            | (Q(claimed_at__isnull=True) & Q(enqueued_at__lt=lease))
            | Q(claimed_at__lt=lease)
        )
        .values_list("pk", flat=True)
    )
    chunks = _queue_chunks(chunk_ids=stuck)
    whatif_lease = now - dt.timedelta(seconds=cfg.whatif_lease_seconds)
    waiting = list(
        WhatIfRun.objects.filter(attempts__lt=cfg.max_attempts)
        .filter(
            Q(status=TaskState.PENDING, enqueued_at__isnull=True)
            | Q(status=TaskState.PENDING, enqueued_at__lt=whatif_lease)
            | Q(status=TaskState.RUNNING, started_at__lt=whatif_lease)
        )
        .values_list("pk", flat=True)
    )
    whatifs = _queue_whatifs(waiting)
    return {"recalibrations": recal, "chunks": chunks, "whatifs": whatifs}


# Alerts.


def alert_acknowledge(
    *, alert: TwinAlert, user: User, reason: str, now: dt.datetime | None = None
) -> TwinAlert:
    """A clinician has seen the alert and says why it needs nothing more (or what was done)."""
    reason = reason.strip()
    if not reason:
        raise ValueError("reason: say why the alert is acknowledged")
    if alert.acknowledged_at is not None:
        raise ValueError("this alert is already acknowledged")
    alert.acknowledged_at = now or timezone.now()
    alert.acknowledged_by = user
    alert.acknowledged_reason = reason[:2000]
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_reason"])
    return alert


# What-if comparisons (interactive queue).


@dataclass(frozen=True)
class PlanItemInput:
    """One item of a plan as a clinician enters it; ``action="stop"`` stops a drug class the
    patient takes from ``start`` on (``models_engine.treatments.PlanItem``)."""

    intervention: str
    start: dt.date
    dose: float = 1.0
    stop: dt.date | None = None
    intensity: str | None = None
    action: str = "add"


def _plan_items(items: Sequence[PlanItemInput], reference: dt.datetime) -> tuple[PlanItem, ...]:
    today = reference.date()

    def day(d: dt.date) -> float:
        return float((d - today).days)

    return tuple(
        PlanItem(
            i.intervention,
            dose=i.dose,
            start=day(i.start),
            stop=day(i.stop) if i.stop else None,
            intensity=i.intensity,
            action=i.action,
        )
        for i in items
    )


def whatif_validate(
    *,
    plans: Mapping[str, Sequence[PlanItemInput]],
    today: dt.date,
    taking: Collection[str] | None = None,
) -> list[dict[str, str]]:
    """Every problem with the plans (``field`` and ``message``); empty when they can run.

    ``taking``: the drug classes the patient takes now, the only ones a plan may stop (not
    checked when ``None``).
    """
    problems: list[dict[str, str]] = []
    if not plans:
        problems.append({"field": "plans", "message": "choose at least one plan"})
    if len(plans) > MAX_PLANS:
        problems.append({"field": "plans", "message": f"at most {MAX_PLANS} plans"})
    for name, items in plans.items():
        where = f"plans.{name}"
        if not name.strip() or name.strip().lower() == CURRENT_CARE:
            problems.append({"field": where, "message": "each plan needs its own name"})
        if not items:
            problems.append({"field": where, "message": "a plan needs at least one item"})
        for k, item in enumerate(items):
            if item.start < today:
                problems.append(
                    {"field": f"{where}[{k}].start", "message": "start may not be in the past"}
                )
            try:
                _plan_items([item], dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC))
            except ValueError as exc:
                problems.append({"field": f"{where}[{k}]", "message": str(exc)})
                continue
            if item.action == "stop" and taking is not None and item.intervention not in taking:
                problems.append(
                    {
                        "field": f"{where}[{k}].intervention",
                        "message": f"the patient does not take {label_for(item.intervention)} "
                        "now; only a current drug class can be stopped",
                    }
                )
        stopped = {i.intervention for i in items if i.action == "stop"}
        for key in sorted(stopped & {i.intervention for i in items if i.action != "stop"}):
            problems.append(
                {"field": where, "message": f"a plan may not both stop and add {label_for(key)}"}
            )
    return problems


class PlanError(ValueError):
    def __init__(self, problems: list[dict[str, str]]):
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


def whatif_submit(
    *,
    user: User,
    patient: Patient,
    plans: Mapping[str, Sequence[PlanItemInput]],
    name: str = "",
    horizon_years: float = 10.0,
    now: dt.datetime | None = None,
) -> WhatIfRun:
    """Record a comparison and queue it on the interactive queue (``PlanError`` for bad plans)."""
    now = now or timezone.now()
    taking = patient_selectors.treatment_classes_taken(patient=patient, now=now)
    problems = whatif_validate(plans=plans, today=now.date(), taking=taking)
    if not 0 < horizon_years <= 30:
        problems.append({"field": "horizon_years", "message": "between 0 and 30 years"})
    if problems:
        raise PlanError(problems)
    stored = {
        plan_name: [
            {
                "intervention": i.intervention,
                "dose": i.dose,
                "start": i.start.isoformat(),
                "stop": i.stop.isoformat() if i.stop else None,
                "intensity": i.intensity,
                "action": i.action,
            }
            for i in items
        ]
        for plan_name, items in plans.items()
    }
    with transaction.atomic():
        run = WhatIfRun.objects.create(
            patient=patient,
            requested_by=user,
            name=name[:120],
            plans=stored,
            horizon_years=horizon_years,
            created_at=now,
        )
        transaction.on_commit(lambda: _queue_whatifs([run.pk]))
    return run


def _queue_whatifs(run_ids: Sequence[int]) -> int:
    from twins.tasks import twin_whatif as whatif_task

    queued = 0
    for run_id in run_ids:
        if _send(whatif_task, args=[run_id]) is None:
            break
        WhatIfRun.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
        queued += 1
    return queued


def _stored_plans(run: WhatIfRun) -> dict[str, list[PlanItemInput]]:
    return {
        name: [
            PlanItemInput(
                intervention=i["intervention"],
                dose=float(i["dose"]),
                start=dt.date.fromisoformat(i["start"]),
                stop=dt.date.fromisoformat(i["stop"]) if i.get("stop") else None,
                intensity=i.get("intensity"),
                action=i.get("action", "add"),
            )
            for i in items
        ]
        for name, items in run.plans.items()
    }


def whatif_execute(
    *, run_id: int, task_id: str = "", progress: Callable[[str], None] | None = None
) -> WhatIfRun:
    """Calibrate the patient on the current record and compare the plans on common draws."""
    run = WhatIfRun.objects.get(pk=run_id)
    if run.status == TaskState.SUCCEEDED:
        return run
    now = timezone.now()
    WhatIfRun.objects.filter(pk=run_id).update(
        status=TaskState.RUNNING, started_at=now, task_id=task_id, attempts=F("attempts") + 1
    )
    inputs = selectors.twin_inputs_for([run.patient_id], reference=now)
    if not inputs:
        raise ValueError(f"patient {run.patient_id} no longer exists")
    recorder.system_access(
        actor_name=WHATIF_ACTOR,
        resource="twins.services.whatif_execute",
        patient_ids=[run.patient_id],
        write=False,
    )
    ti = inputs[0]
    plans = {name: _plan_items(items, now) for name, items in _stored_plans(run).items()}
    if progress:
        progress("calibrating")
    cal = calibrate(ti.history)
    if progress:
        progress("comparing")
    outcomes = compare_plans(cal, plans, horizon_years=run.horizon_years)
    result = {
        "reference_at": now.isoformat(),
        "fallback": cal.fallback,
        "notes": list(cal.notes),
        "outcomes": {name: outcome.to_dict() for name, outcome in outcomes.items()},
    }
    WhatIfRun.objects.filter(pk=run_id).update(
        status=TaskState.SUCCEEDED,
        result=result,
        error="",
        finished_at=timezone.now(),
        reference_at=now,
        model_version=model_version(),
        inputs_sha256=ti.inputs_sha256,
    )
    run.refresh_from_db()
    return run


def whatif_fail(*, run_id: int, error: str) -> None:
    WhatIfRun.objects.filter(pk=run_id).exclude(status=TaskState.SUCCEEDED).update(
        status=TaskState.FAILED, error=error[:4000], finished_at=timezone.now()
    )


# Reading stored snapshots for pages and the API.


def snapshot_payload(snapshot: TwinSnapshot) -> dict[str, object]:
    """A snapshot as plain data: bands by variable on the monthly grid, risk, trust figures."""
    bands = snapshot.band_array()
    names = ("median", "lo80", "hi80", "lo95", "hi95")
    order = [snapshot.quantiles.index(q) for q in BATCH_QUANTILES]
    return {
        "id": snapshot.pk,
        "computed_at": snapshot.computed_at,
        "reference_at": snapshot.reference_at,
        "data_until": snapshot.data_until,
        "model_version": snapshot.model_version,
        "inputs_sha256": snapshot.inputs_sha256,
        "task_id": snapshot.task_id,
        "trigger": snapshot.trigger,
        "fallback": snapshot.fallback,
        "notes": snapshot.notes,
        "t_years": [round(float(x), 5) for x in snapshot.t_years],
        "variables": {
            v: {
                "unit": VARIABLE_UNITS.get(v, ""),
                **{
                    n: [round(float(x), 3) for x in bands[i, order[j]]] for j, n in enumerate(names)
                },
            }
            for i, v in enumerate(snapshot.variables)
        },
        "risk": snapshot.risk,
        "backtest": snapshot.backtest,
        "calibration": snapshot.calibration,
    }


def twin_status(state: TwinState | None, *, now: dt.datetime | None = None) -> dict[str, object]:
    """Whether the latest snapshot is current, and if not, since when it is stale and why."""
    now = now or timezone.now()
    cfg = twin_config()
    if state is None or state.latest is None:
        return {
            "state": "failed" if state and state.failed_at else "none",
            "stale_since": None,
            "message": "The twin has not been fitted to this record yet."
            if not (state and state.failed_at)
            else f"The last fit failed: {state.last_error}",
            "last_error": state.last_error if state else "",
        }
    latest = state.latest
    reasons = []
    stale_since = None
    if state.data_changed_at and state.data_changed_at > latest.computed_at:
        stale_since = state.data_changed_at
        reasons.append("the record changed after the last fit")
    if latest.computed_at < now - dt.timedelta(days=cfg.stale_after_days):
        stale_since = stale_since or latest.computed_at + dt.timedelta(days=cfg.stale_after_days)
        reasons.append(f"the last fit is older than {cfg.stale_after_days} days")
    if latest.model_version != model_version():
        stale_since = stale_since or latest.computed_at
        reasons.append("the model has changed since the last fit")
    if state.failed_at and state.failed_at > latest.computed_at:
        reasons.append(f"the last recompute failed: {state.last_error}")
    if not reasons:
        return {
            "state": "current",
            "stale_since": None,
            "message": f"Fitted {latest.computed_at:%d %b %Y %H:%M} UTC.",
            "last_error": "",
        }
    return {
        "state": "stale",
        "stale_since": stale_since,
        "message": "Recomputation is delayed; showing results from "
        f"{latest.computed_at:%d %b %Y %H:%M} UTC ({'; '.join(reasons)}).",
        "last_error": state.last_error,
    }
