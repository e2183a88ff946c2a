"""Device tokens in the admin site: data managers issue them (the secret is shown once) and revoke them.

The hash is never shown. A revoked or expired token cannot be made active again: revocation has no
undo and, once saved, only a token's label can be changed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import User
from devices import services
from devices.models import DeviceToken, TokenStatus
from patients.admin import ScopedAdmin


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(TokenStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        live = Q(revoked_at__isnull=True)
        if self.value() == TokenStatus.ACTIVE:
            return queryset.filter(live & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)))
        if self.value() == TokenStatus.EXPIRED:
            return queryset.filter(live & Q(expires_at__lte=now))
        if self.value() == TokenStatus.REVOKED:
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class DeviceTokenIssueForm(forms.ModelForm):  # type: ignore[type-arg]  # stubs want the model here
    class Meta:
        model = DeviceToken
        fields = ["patient", "kind", "label", "expires_at"]

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future, or leave it empty.")
        return expires_at


@admin.register(DeviceToken)
class DeviceTokenAdmin(ScopedAdmin):
    list_display = (
        "patient",
        "kind",
        "label",
        "display_prefix",
        "status",
        "last_used_at",
        "expires_at",
        "created_at",
        "created_by",
    )
    list_filter = ("kind", TokenStatusFilter)
    search_fields = ("=patient__mrn", "label", "=prefix")
    list_select_related = ("patient", "created_by")
    raw_id_fields = ("patient",)
    actions = ["revoke_selected"]
    show_full_result_count = False

    #: shown, never edited, once a token exists (the label stays editable)
    _FIXED = (
        "patient",
        "kind",
        "display_prefix",
        "status",
        "expires_at",
        "created_by",
        "created_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
    )

    @admin.display(description="token")
    def display_prefix(self, obj: DeviceToken) -> str:
        return obj.display_prefix

    @admin.display(description="status")
    def status(self, obj: DeviceToken) -> str:
        return str(obj.status_at(timezone.now()).label)

    def get_fields(self, request: HttpRequest, obj: DeviceToken | None = None) -> Any:
        if obj is None:
            return DeviceTokenIssueForm.Meta.fields
        return ["label", *self._FIXED]

    def get_readonly_fields(self, request: HttpRequest, obj: DeviceToken | None = None) -> Any:
        return () if obj is None else self._FIXED

    def get_form(
        self,
        request: HttpRequest,
        obj: DeviceToken | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        if obj is None:
            kwargs["form"] = DeviceTokenIssueForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: DeviceToken | None = None) -> bool:
        return False  # a token is the record of who could send readings: revoke it instead

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        if change:
            return super().save_form(request, form, change)
        assert isinstance(request.user, User)
        issued = services.device_token_issue(
            patient=form.cleaned_data["patient"],
            kind=form.cleaned_data["kind"],
            label=form.cleaned_data["label"],
            expires_at=form.cleaned_data["expires_at"],
            created_by=request.user,
        )
        messages.warning(
            request,
            format_html(
                "Copy this device token into the device now; it is shown only this once and "
                "cannot be recovered: <code>{}</code>",
                issued.secret,
            ),
        )
        return issued.token

    def save_model(self, request: HttpRequest, obj: DeviceToken, form: Any, change: bool) -> None:
        if change:  # a new token was saved by device_token_issue in save_form
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:  # a token has no many-to-many fields or inlines to save when it is issued
            super().save_related(request, form, formsets, change)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[DeviceToken]) -> None:
        assert isinstance(request.user, User)
        count = services.device_tokens_revoke(
            token_ids=queryset.values_list("pk", flat=True), revoked_by=request.user
        )
        messages.success(
            request, f"{count} token{'s' if count != 1 else ''} revoked; they no longer work."
        )
