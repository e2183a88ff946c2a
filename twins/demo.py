"""The demo's twins: every demo patient fitted now, and once as of a few months ago, so the pages
have a past forecast to set against what happened and the readings since then are checked
against it (the ones that left it raise drift alerts, as they would have in real use)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.utils import timezone

from patients.models import Patient
from twins import services
from twins.models import TwinSnapshot

#: How far back the demo's earlier fit is made.
EARLIER_FIT_DAYS = 120
CHUNK = 500


def demo_twins(*, progress: Callable[[str], None] = print, now: dt.datetime | None = None) -> int:
    """Fit every living demo patient without a snapshot (idempotent); returns how many were fitted."""
    now = now or timezone.now()
    fitted = set(TwinSnapshot.objects.values_list("patient_id", flat=True).distinct())
    ids = [
        pid
        for pid in Patient.objects.filter(deceased_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
        if pid not in fitted
    ]
    if not ids:
        return 0
    progress(f"Fitting the twins of {len(ids)} patients…")
    earlier = now - dt.timedelta(days=EARLIER_FIT_DAYS)
    alerts = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        services.snapshots_compute(patient_ids=chunk, now=earlier, trigger="demo")
        alerts += services.snapshots_compute(patient_ids=chunk, now=now, trigger="demo").alerts
    progress(f"Fitted {len(ids)} twins; {alerts} alerts raised.")
    return len(ids)
