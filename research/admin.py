"""Research consent in the admin: data managers record it and withdraw it; no row is ever deleted."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from patients.admin import ScopedAdmin
from research.models import ResearchConsent
from research.selectors import consent_active_for
from research.services import ConsentError, consent_record, consent_withdraw


class ConsentRecordForm(forms.ModelForm):  # type: ignore[type-arg]  # ModelForm's model is set in Meta
    class Meta:
        model = ResearchConsent
        fields = ["patient"]

    def clean_patient(self) -> Any:
        patient = self.cleaned_data["patient"]
        if consent_active_for(patient=patient) is not None:
            raise forms.ValidationError("This patient already has an active research consent.")
        return patient


class ConsentStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("withdrawn", "Withdrawn")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ResearchConsent]
    ) -> QuerySet[ResearchConsent]:
        if self.value() in ("active", "withdrawn"):
            return queryset.filter(withdrawn_at__isnull=self.value() == "active")
        return queryset


@admin.register(ResearchConsent)
class ResearchConsentAdmin(ScopedAdmin):
    list_display = ("patient", "recorded_at", "recorded_by", "withdrawn_at", "withdrawn_by")
    list_filter = (ConsentStateFilter,)
    search_fields = ("=patient__mrn",)
    exact_search_fields = ("patient__mrn",)
    list_select_related = ("patient", "recorded_by", "withdrawn_by")
    raw_id_fields = ("patient",)
    actions = ["withdraw"]
    show_full_result_count = False

    def get_form(
        self,
        request: HttpRequest,
        obj: ResearchConsent | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        if obj is None:
            kwargs["form"] = ConsentRecordForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ResearchConsent | None = None) -> Any:
        if obj is None:
            return ["patient"]
        return ["patient", "recorded_at", "recorded_by", "withdrawn_at", "withdrawn_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: ResearchConsent | None = None) -> Any:
        # A recorded consent is history: it changes only by being withdrawn (the action).
        if obj is None:
            return []
        return self.get_fields(request, obj)

    def has_delete_permission(
        self, request: HttpRequest, obj: ResearchConsent | None = None
    ) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ResearchConsent, form: Any, change: bool
    ) -> None:
        if change:  # every field of a stored consent is read-only
            return
        assert isinstance(request.user, User)
        consent = consent_record(patient=obj.patient, recorded_by=request.user)
        # the admin goes on to log and redirect to ``obj``: make it the row the service wrote
        obj.pk, obj.recorded_by, obj.recorded_at = (
            consent.pk,
            consent.recorded_by,
            consent.recorded_at,
        )
        obj._state.adding = False

    @admin.action(description="Withdraw the selected consents", permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[ResearchConsent]) -> None:
        assert isinstance(request.user, User)
        withdrawn = 0
        for consent in queryset.filter(withdrawn_at__isnull=True):
            try:
                consent_withdraw(consent=consent, withdrawn_by=request.user)
            except ConsentError:  # withdrawn meanwhile by someone else: nothing left to do
                continue
            withdrawn += 1
        messages.success(request, f"{withdrawn} consent(s) withdrawn.")
