"""The admin site for data managers: records, notes, care teams and imports.

List pages are built for a million observations: related rows are joined, not fetched per row;
filters use fixed choices rather than DISTINCT scans; the full-table count is an estimate.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property

from accounts.models import User
from audit import recorder
from patients import selectors
from patients.fhir.exporter import patient_bundle
from patients.fhir.importer import bundle_import
from patients.fhir.parse import BundleError
from patients.models import (
    CareTeam,
    ClinicalNote,
    Condition,
    Encounter,
    ImportBatch,
    Medication,
    NoteAnalysisResult,
    NoteSummary,
    Observation,
    Patient,
)
from patients.patient_copy import patient_copy_issue
from patients.services import notes_changed
from patients.signals import records_changed


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]  # admin pages any model
    """Uses PostgreSQL's planner estimate for an unfiltered large table instead of COUNT(*)."""

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if connection.vendor == "postgresql" and isinstance(qs, QuerySet) and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 100_000:
                return int(row[0])
        return super().count


class ScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows are limited by the data-management selector; searches on MRN and codes are exact.

    An exact search uses the unique MRN index and the (patient, code, time) index instead of
    scanning a million rows for a case-insensitive match.
    """

    #: fields compared exactly with a search term that looks like an identifier
    exact_search_fields: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        assert isinstance(request.user, User)
        if selectors.can_manage_records(request.user):
            return qs
        return qs.none()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self._records_changed(obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            if not isinstance(obj, Patient):  # a deleted patient has no twin to keep current
                self._records_changed(obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            field = "pk" if queryset.model is Patient else "patient_id"
            ids = sorted(set(queryset.values_list(field, flat=True)))
            if ids and queryset.model is not Patient:
                records_changed.send(sender=queryset.model, patient_ids=ids, reason="admin")
            super().delete_queryset(request, queryset)

    @staticmethod
    def _records_changed(obj: Any) -> None:
        """An edit of a row the twin reads: its patient's twin is recalibrated."""
        if isinstance(obj, Patient):
            patient_id = obj.pk
        elif isinstance(obj, Observation | Condition | Medication):
            patient_id = obj.patient_id
        else:
            return
        if patient_id is not None:
            records_changed.send(sender=type(obj), patient_ids=[patient_id], reason="admin")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if term and self.exact_search_fields and " " not in term:
            # The first identifier field that matches wins: one indexed equality, never an OR
            # across a join (which no index serves).
            for field in self.exact_search_fields:
                narrowed = queryset.filter(**{field: term})
                if narrowed.exists():
                    return narrowed, False
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


def fixed_filter(
    field: str, values: tuple[str, ...], title: str | None = None
) -> type[admin.SimpleListFilter]:
    """A list filter offering fixed values: no DISTINCT scan of a large table to find them."""

    class FixedFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(v, v) for v in values]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    FixedFilter.title = title or field.replace("_", " ")
    return FixedFilter


ObservationCategoryFilter = fixed_filter(
    "category", ("vital-signs", "laboratory", "social-history", "survey", "exam")
)


@admin.register(Patient)
class PatientAdmin(ScopedAdmin):
    list_display = (
        "mrn",
        "family_name",
        "given_name",
        "sex",
        "birth_date",
        "deceased_at",
        "created_at",
    )
    list_filter = ("sex",)
    search_fields = ("=mrn", "family_name", "given_name", "=fhir_id")
    exact_search_fields = ("mrn", "fhir_id", "family_name")
    readonly_fields = ("fhir_id", "import_batch", "created_at", "updated_at")
    actions = ["export_fhir", "patient_copy"]
    show_full_result_count = False

    @admin.action(description="Export the selected patients as FHIR R4 bundles")
    def export_fhir(self, request: HttpRequest, queryset: QuerySet[Patient]) -> HttpResponse:
        chosen = list(queryset[:50])
        assert isinstance(request.user, User)
        recorder.patients_exported(user=request.user, patient_ids=[p.pk for p in chosen])
        bundles = [patient_bundle(p) for p in chosen]
        payload = (
            bundles[0]
            if len(bundles) == 1
            else {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": b} for b in bundles],
            }
        )
        response = HttpResponse(json.dumps(payload, indent=1), content_type="application/fhir+json")
        response["Content-Disposition"] = 'attachment; filename="twinportal-export.json"'
        return response

    @admin.action(description="Give the selected patient a copy of their own record")
    def patient_copy(
        self, request: HttpRequest, queryset: QuerySet[Patient]
    ) -> HttpResponse | None:
        """One patient's whole record (FHIR bundle and printable summary) as a ZIP, logged."""
        patients = list(queryset[:2])
        if len(patients) != 1:
            messages.error(request, "Select exactly one patient: a copy is for one person.")
            return None
        assert isinstance(request.user, User)
        copy = patient_copy_issue(
            patient=patients[0],
            issued_by=request.user,
            ip=request.META.get("REMOTE_ADDR") or None,
            request_id=getattr(request, "request_id", ""),
        )
        response = HttpResponse(copy.zip_bytes(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="health-record.zip"'
        response["Cache-Control"] = "no-store"
        return response


@admin.register(Observation)
class ObservationAdmin(ScopedAdmin):
    list_display = (
        "effective_at",
        "patient",
        "code",
        "display",
        "value",
        "unit",
        "source",
        "implausible",
        "unit_assumed",
    )
    list_filter = ("source", ObservationCategoryFilter, "implausible", "unit_assumed")
    search_fields = ("=patient__mrn", "=code")
    exact_search_fields = ("patient__mrn", "code")
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "parent", "encounter", "import_batch")
    readonly_fields = ("fhir_id", "created_at")
    date_hierarchy = None
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100

    # Imported and device readings are the record as received: a correction is a new reading
    # (or a re-imported bundle, which keeps the old value as a superseded version), never an edit
    # or a deletion in place.
    def has_change_permission(self, request: HttpRequest, obj: Observation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Observation | None = None) -> bool:
        return False


@admin.register(Condition)
class ConditionAdmin(ScopedAdmin):
    list_display = ("patient", "code", "display", "clinical_status", "onset_at", "abatement_at")
    list_filter = (
        fixed_filter(
            "clinical_status",
            ("active", "recurrence", "relapse", "inactive", "remission", "resolved"),
        ),
        fixed_filter(
            "verification_status",
            ("unconfirmed", "provisional", "differential", "confirmed", "refuted"),
        ),
    )
    search_fields = ("=patient__mrn", "=code", "display")
    exact_search_fields = ("patient__mrn", "code")
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "encounter", "import_batch")
    show_full_result_count = False


@admin.register(Medication)
class MedicationAdmin(ScopedAdmin):
    list_display = (
        "patient",
        "name",
        "treatment_class",
        "statin_intensity",
        "status",
        "start",
        "stop",
    )
    list_filter = ("treatment_class", "status", "statin_intensity")
    search_fields = ("=patient__mrn", "name", "=rxnorm_code")
    exact_search_fields = ("patient__mrn", "rxnorm_code", "name")
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "encounter", "import_batch")
    show_full_result_count = False


@admin.register(Encounter)
class EncounterAdmin(ScopedAdmin):
    list_display = ("patient", "start", "class_code", "type_display", "practitioner")
    list_filter = (
        fixed_filter("class_code", ("AMB", "EMER", "IMP", "HH", "VR"), "class"),
        fixed_filter("status", ("planned", "in-progress", "finished", "cancelled")),
    )
    search_fields = ("=patient__mrn",)
    exact_search_fields = ("patient__mrn",)
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "import_batch")
    show_full_result_count = False


@admin.register(ClinicalNote)
class ClinicalNoteAdmin(ScopedAdmin):
    list_display = (
        "written_at",
        "patient",
        "author_name",
        "author_role",
        "note_type",
        "status",
        "version",
    )
    list_filter = ("status",)
    search_fields = ("=patient__mrn", "author_name", "title")
    exact_search_fields = ("patient__mrn",)
    list_select_related = ("patient",)
    raw_id_fields = ("patient", "author", "previous_version", "encounter", "import_batch")
    readonly_fields = ("fhir_id", "version", "previous_version", "signed_at", "created_at")
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: ClinicalNote | None = None) -> Any:
        # A signed note is immutable: everything is read-only (amendments are new notes).
        if obj is not None and obj.is_signed:
            return [f.name for f in obj._meta.fields]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ClinicalNote | None = None) -> bool:
        return obj is None or not obj.is_signed

    def save_model(self, request: HttpRequest, obj: ClinicalNote, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        notes_changed(note_ids=[obj.pk], triggered_by=request.user.get_username())


@admin.register(NoteAnalysisResult)
class NoteAnalysisResultAdmin(admin.ModelAdmin[NoteAnalysisResult]):
    list_display = ("note", "status", "pipeline_version", "updated_at", "error")
    list_filter = ("status", "pipeline_version")
    list_select_related = ("note",)
    readonly_fields = [f.name for f in NoteAnalysisResult._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(NoteSummary)
class NoteSummaryAdmin(admin.ModelAdmin[NoteSummary]):
    list_display = ("patient", "status", "note_count", "computed_at", "triggered_by", "error")
    list_filter = ("status", "pipeline_version")
    search_fields = ("=patient__mrn",)
    list_select_related = ("patient",)
    readonly_fields = [f.name for f in NoteSummary._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name",)
    search_fields = ("name",)
    filter_horizontal = ("members",)
    raw_id_fields = ("patients",)


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(
        help_text="A FHIR R4 Bundle (JSON). It is imported whole or not at all."
    )

    def clean_bundle(self) -> Any:
        upload = self.cleaned_data["bundle"]
        limit: int = settings.TWINPORTAL_MAX_BUNDLE_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes, larger than the limit of {limit:,} bytes; "
                "nothing was imported."
            )
        return upload


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "started_at",
        "filename",
        "channel",
        "status",
        "patient",
        "created_by",
        "summary",
    )
    list_filter = ("status", "channel")
    search_fields = ("=sha256", "filename")
    list_select_related = ("patient", "created_by")
    readonly_fields = [f.name for f in ImportBatch._meta.fields]
    change_list_template = "admin/patients/importbatch/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportBatch | None = None) -> bool:
        return False

    # the batches are the provenance of every imported row
    def has_delete_permission(self, request: HttpRequest, obj: ImportBatch | None = None) -> bool:
        return False

    @admin.display(description="Result")
    def summary(self, obj: ImportBatch) -> str:
        if obj.status == ImportBatch.Status.FAILED:
            first = obj.errors[0] if obj.errors else {}
            return f"{len(obj.errors)} problem(s): entry {first.get('entry')} {first.get('resource_type', '')} {first.get('field', '')}: {first.get('message', '')}"
        created = sum(v.get("created", 0) for k, v in obj.counts.items() if k != "skipped")
        updated = sum(v.get("updated", 0) for k, v in obj.counts.items() if k != "skipped")
        flagged = obj.counts.get("Observation", {})
        notes = [
            f"{flagged[key]} {label}"
            for key, label in (("unit_assumed", "unit(s) assumed"), ("implausible", "implausible"))
            if flagged.get(key)
        ]
        return ", ".join([f"{created} created, {updated} updated", *notes])

    def get_urls(self) -> list[Any]:
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="patients_importbatch_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("patients.add_patient"):
            messages.error(request, "You do not have permission to import records.")
            return HttpResponseRedirect(reverse("admin:patients_importbatch_changelist"))
        form = BundleUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["bundle"]
            assert isinstance(request.user, User)
            try:
                batch = bundle_import(
                    raw=upload.read(),
                    channel=ImportBatch.Channel.ADMIN,
                    filename=upload.name,
                    user=request.user,
                )
            except BundleError as exc:
                for problem in exc.problems[:10]:
                    messages.error(request, str(problem))
                messages.error(request, "Nothing was imported.")
            else:
                messages.success(
                    request, f"{upload.name}: {batch.get_status_display()} — {self.summary(batch)}."
                )
                return HttpResponseRedirect(reverse("admin:patients_importbatch_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Import a FHIR bundle",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/patients/importbatch/upload.html", context)


admin.site.site_header = "TwinPortal data management"
admin.site.site_title = "TwinPortal admin"
admin.site.index_title = "Records, notes, care teams and imports"
