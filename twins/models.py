"""What the twin computed, with its provenance, and the work queued to keep it current.

The database is the one source of truth: a recalibration request, a nightly run and each of its
chunks, and a what-if comparison are rows before they are Celery messages, so a lost message (Redis
restarted, a worker killed) is found again by the sweeper and redone; nothing is lost and, through
unique constraints and row locks, nothing is written twice.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models import Q

from patients.models import Observation, Patient


class TaskState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class RecomputeRun(models.Model):
    """One recompute of many patients (the nightly run, or one started by hand), split into chunks."""

    class Kind(models.TextChoices):
        NIGHTLY = "nightly", "Nightly"
        MANUAL = "manual", "Started by hand"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        COMPLETED_WITH_FAILURES = "partial", "Completed with failures"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    model_version = models.CharField(max_length=40)
    stale_after_days = models.PositiveIntegerField()
    chunk_size = models.PositiveIntegerField()
    triggered_by = models.CharField(max_length=150, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    patients_total = models.PositiveIntegerField(default=0)
    patients_done = models.PositiveIntegerField(default=0)
    patients_skipped = models.PositiveIntegerField(
        default=0, help_text="Inputs and model unchanged since a recent fit: nothing to do."
    )
    patients_failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text="Per failed patient: patient id and error."
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run of {self.started_at:%Y-%m-%d %H:%M} ({self.status})"


class RecomputeChunk(models.Model):
    """A slice of a run: calibrated and forecast as one batch and written in one transaction."""

    run = models.ForeignKey(RecomputeRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    patient_ids = models.JSONField()
    status = models.CharField(max_length=10, choices=TaskState.choices, default=TaskState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="chunk_run_index_unique")
        ]
        indexes = [models.Index(fields=["status", "enqueued_at"], name="chunk_status_enqueued_idx")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id} ({self.status})"


class TwinSnapshot(models.Model):
    """One fit of one patient's twin and everything derived from it. Never changed once written;
    older snapshots are kept so a past forecast can be set against what happened."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="twin_snapshots")
    run = models.ForeignKey(
        RecomputeRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    computed_at = models.DateTimeField()
    reference_at = models.DateTimeField(help_text="t = 0 of the forecast: the time of the fit.")
    data_until = models.DateTimeField(
        null=True, blank=True, help_text="The newest reading the fit saw."
    )
    model_version = models.CharField(max_length=40)
    inputs_sha256 = models.CharField(
        max_length=64, help_text="Hash of the record rows the fit was computed from."
    )
    task_id = models.CharField(max_length=64, blank=True)
    trigger = models.CharField(max_length=40, blank=True, help_text="What asked for this fit.")
    fallback = models.BooleanField(
        help_text="A variable had too few readings to personalise: the twin leans on population values."
    )
    notes = models.JSONField(default=list, blank=True)
    calibration = models.JSONField()
    # Bands of every forecast variable on a monthly grid: float32, shape (variables, 5, times)
    # in the order of ``variables`` and ``quantiles``; about 17 kB a snapshot, a tenth of JSON.
    variables = models.JSONField()
    quantiles = models.JSONField()
    step_days = models.FloatField()
    n_times = models.PositiveIntegerField()
    bands = models.BinaryField()
    risk = models.JSONField(null=True, blank=True)
    backtest = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per variable: the twin's, carry-forward's and own trend's error on the held-out last year.",
    )
    backtest_at = models.DateTimeField(
        null=True, blank=True, help_text="When that backtest was computed (it is kept for a while)."
    )

    class Meta:
        ordering = ["patient", "-computed_at"]
        indexes = [
            models.Index(fields=["patient", "-computed_at"], name="snapshot_patient_time_idx")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "patient"],
                condition=Q(run__isnull=False),
                name="snapshot_once_per_run",
            )
        ]

    def __str__(self) -> str:
        return f"Twin of patient {self.patient_id} at {self.computed_at:%Y-%m-%d %H:%M}"

    @property
    def t_years(self) -> np.ndarray:
        return np.arange(self.n_times, dtype=np.float64) * self.step_days / 365.25

    def band_array(self) -> np.ndarray:
        """The stored bands as (variables, 5, times) float64."""
        raw = np.frombuffer(bytes(self.bands), dtype="<f4")
        return raw.reshape(len(self.variables), len(self.quantiles), self.n_times).astype(
            np.float64
        )


class TwinState(models.Model):
    """Per patient: the latest snapshot, when the record last changed, and the last failure."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="twin_state")
    latest = models.ForeignKey(
        TwinSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_fit_at = models.DateTimeField(null=True, blank=True)
    model_version = models.CharField(max_length=40, blank=True)
    data_changed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["last_fit_at"], name="twinstate_last_fit_idx")]

    def __str__(self) -> str:
        return f"Twin state of patient {self.patient_id}"


class PendingRecalibration(models.Model):
    """An outstanding request to recalibrate one patient after new data (the debounce and outbox).

    Repeated requests move ``due_at`` on (a burst of home readings causes one fit) but never past
    ``first_requested_at`` plus the longest wait. ``enqueued_at`` is empty while no Celery message
    is known to be queued (Redis was down): the sweeper queues it when Redis is back.
    """

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, related_name="pending_recalibration"
    )
    reason = models.CharField(max_length=40)
    requests = models.PositiveIntegerField(default=1)
    first_requested_at = models.DateTimeField()
    due_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["enqueued_at", "due_at"], name="pendingrecal_queue_idx")]

    def __str__(self) -> str:
        return f"Recalibration of patient {self.patient_id} due {self.due_at:%Y-%m-%d %H:%M:%S}"


class TwinAlert(models.Model):
    """Reality left the forecast, or the risk crossed a threshold: stored once, with its evidence,
    until a clinician acknowledges it with a reason."""

    class Kind(models.TextChoices):
        DRIFT = "drift", "Reading outside the forecast"
        RISK = "risk", "Risk threshold crossed"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="twin_alerts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    dedupe_key = models.CharField(max_length=120, unique=True)
    snapshot = models.ForeignKey(
        TwinSnapshot,
        on_delete=models.PROTECT,
        related_name="alerts",
        help_text="The forecast the reading was checked against, or the fit that gave the risk.",
    )
    observation = models.ForeignKey(
        Observation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    variable = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=255)
    evidence = models.JSONField()
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    acknowledged_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["patient", "acknowledged_at", "-created_at"], name="alert_patient_open_idx"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True)
                | (Q(acknowledged_by__isnull=False) & ~Q(acknowledged_reason="")),
                name="alert_ack_has_who_and_why",
            )
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class WhatIfRun(models.Model):
    """A clinician's comparison of up to six plans against current care, computed by a task on the
    interactive queue and kept (optionally under a name the care team sees)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="whatif_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=120, blank=True)
    plans = models.JSONField(
        help_text="Plan name → items (intervention, dose, start and stop dates)."
    )
    horizon_years = models.FloatField(default=10.0)
    status = models.CharField(max_length=10, choices=TaskState.choices, default=TaskState.PENDING)
    model_version = models.CharField(max_length=40, blank=True)
    inputs_sha256 = models.CharField(max_length=64, blank=True)
    reference_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="whatif_status_enqueued_idx")
        ]

    def __str__(self) -> str:
        return f"What-if {self.name or self.pk} for patient {self.patient_id} ({self.status})"
