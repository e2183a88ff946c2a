"""The twin's results in the admin site: runs with their chunks and errors, snapshots, alerts,
pending recalibrations and what-if runs. All read-only: results change only by recomputing."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from patients import selectors as patient_selectors
from twins.models import (
    PendingRecalibration,
    RecomputeChunk,
    RecomputeRun,
    TwinAlert,
    TwinSnapshot,
    TwinState,
    WhatIfRun,
)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Visible to data managers and administrators; nobody edits computed results by hand."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        assert isinstance(request.user, User)
        return qs if patient_selectors.can_manage_records(request.user) else qs.none()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChunkInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RecomputeChunk
    fields = ("index", "status", "attempts", "enqueued_at", "claimed_at", "finished_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RecomputeRun)
class RecomputeRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "kind",
        "status",
        "finished_at",
        "patients_total",
        "patients_done",
        "patients_skipped",
        "patients_failed",
        "model_version",
    )
    list_filter = ("kind", "status")
    inlines = [ChunkInline]


@admin.register(TwinSnapshot)
class TwinSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("computed_at", "patient", "model_version", "trigger", "fallback", "run")
    list_filter = ("fallback", "trigger")
    list_select_related = ("patient",)
    search_fields = ("=patient__mrn",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer("bands")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields if f.name != "bands"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_readonly_fields(request, obj)


@admin.register(TwinState)
class TwinStateAdmin(ReadOnlyAdmin):
    list_display = ("patient", "last_fit_at", "data_changed_at", "model_version", "failed_at")
    list_select_related = ("patient",)
    search_fields = ("=patient__mrn",)
    list_filter = (("failed_at", admin.EmptyFieldListFilter),)
    show_full_result_count = False


@admin.register(PendingRecalibration)
class PendingRecalibrationAdmin(ReadOnlyAdmin):
    list_display = (
        "patient",
        "reason",
        "requests",
        "first_requested_at",
        "due_at",
        "enqueued_at",
        "attempts",
        "last_error",
    )
    list_select_related = ("patient",)


@admin.register(TwinAlert)
class TwinAlertAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "patient",
        "kind",
        "message",
        "acknowledged_at",
        "acknowledged_by",
    )
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    list_select_related = ("patient", "acknowledged_by")
    search_fields = ("=patient__mrn",)
    show_full_result_count = False


@admin.register(WhatIfRun)
class WhatIfRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "patient", "name", "status", "requested_by", "finished_at")
    list_filter = ("status",)
    list_select_related = ("patient", "requested_by")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer("result")
