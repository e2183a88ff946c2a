"""Read-only admin for the access log and emergency accesses, and the per-patient "who viewed
this record" report. Nobody, a superuser included, may add, change or delete an audit row here
(the database refuses it as well)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from accounts.models import User
from audit import selectors
from audit.models import AuditEvent, EmergencyAccess, PrivacyOfficerNotification
from patients.selectors import can_manage_records

#: Rows per page of the "who viewed" report (every row is listed, page by page).
REPORT_PAGE_SIZE = 200


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # shared by three models
    """Data managers and administrators may look; nobody may add, change or delete."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return isinstance(request.user, User) and can_manage_records(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "actor_name",
        "action",
        "patient_id",
        "resource",
        "break_glass",
        "ip",
        "request_id",
    )
    list_filter = ("action", "break_glass")
    search_fields = ("=patient_id", "=actor_name", "=request_id")
    date_hierarchy = "at"
    show_full_result_count = False

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "patient/<int:patient_id>/",
            self.admin_site.admin_view(self.who_viewed),
            name="audit_auditevent_patient",
        )
        return [report, *super().get_urls()]

    def who_viewed(self, request: HttpRequest, patient_id: int) -> HttpResponse:
        """Every recorded access to one patient's record, newest first, page by page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        page = Paginator(
            selectors.patient_access_log(patient_id=patient_id), REPORT_PAGE_SIZE
        ).get_page(request.GET.get("page"))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Who viewed patient record {patient_id}",
            "patient_id": patient_id,
            "page": page,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/audit/who_viewed.html", context)


@admin.register(EmergencyAccess)
class EmergencyAccessAdmin(ReadOnlyAdmin):
    list_display = ("granted_at", "user", "patient_id", "expires_at", "reason", "request_id")
    list_select_related = ("user",)
    search_fields = ("=patient__id", "=user__username")


@admin.register(PrivacyOfficerNotification)
class PrivacyOfficerNotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "recipient", "subject", "sent_at", "error")
