from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from accounts import services
from accounts.models import ApiToken, ApiTokenStatus, User


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = (
        "username",
        "first_name",
        "last_name",
        "role",
        "professional_role",
        "is_active",
        "last_login",
    )
    list_filter = ("role", "is_active", "is_staff")
    actions = ["disable_selected"]
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("TwinPortal", {"fields": ("role", "professional_role")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("TwinPortal", {"fields": ("role", "professional_role")}),
    )

    @admin.action(description="Disable the selected accounts", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = services.users_disable(user_ids=queryset.values_list("pk", flat=True))
        messages.success(
            request,
            f"{count} account{'s' if count != 1 else ''} disabled; their sessions and API tokens "
            "have ended.",
        )


class ApiTokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(ApiTokenStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        live = Q(revoked_at__isnull=True)
        current = Q(session_generation=F("user__session_generation"))
        if self.value() == ApiTokenStatus.ACTIVE:
            return queryset.filter(live & current & Q(expires_at__gt=now))
        if self.value() == ApiTokenStatus.EXPIRED:
            return queryset.filter(live & current & Q(expires_at__lte=now))
        if self.value() == ApiTokenStatus.SUPERSEDED:
            return queryset.filter(live & ~current)
        if self.value() == ApiTokenStatus.REVOKED:
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiTokenIssueForm(forms.ModelForm):  # type: ignore[type-arg]  # stubs want the model here
    expires_at = forms.DateTimeField(
        required=False,
        help_text="Leave empty for the default life of a token (90 days unless configured).",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scope", "expires_at"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        user, scope = cleaned.get("user"), cleaned.get("scope")
        if isinstance(user, User) and scope:
            try:
                cleaned["expires_at"] = services.api_token_expiry_check(
                    user=user,
                    scope=scope,
                    expires_at=cleaned.get("expires_at"),
                    now=timezone.now(),
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Data managers issue API tokens (the secret is shown once) and revoke them; the hash is
    never shown and, once issued, only a token's name can be changed."""

    list_display = (
        "name",
        "user",
        "scope",
        "display_prefix",
        "status",
        "last_used_at",
        "expires_at",
        "created_at",
        "created_by",
    )
    list_filter = ("scope", ApiTokenStatusFilter)
    search_fields = ("name", "=prefix", "user__username")
    list_select_related = ("user", "created_by")
    raw_id_fields = ("user",)
    actions = ["revoke_selected"]

    #: shown, never edited, once a token exists (the name stays editable)
    _FIXED = (
        "user",
        "scope",
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
    def display_prefix(self, obj: ApiToken) -> str:
        return obj.display_prefix

    @admin.display(description="status")
    def status(self, obj: ApiToken) -> str:
        now = timezone.now()
        return str(obj.status_at(now, user_generation=obj.user.session_generation).label)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ApiTokenIssueForm.Meta.fields
        return ["name", *self._FIXED]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return () if obj is None else self._FIXED

    def get_form(
        self, request: HttpRequest, obj: ApiToken | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenIssueForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # a token is the record of who could call the API: revoke it instead

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        if change:
            return super().save_form(request, form, change)
        assert isinstance(request.user, User)
        issued = services.api_token_issue(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            expires_at=form.cleaned_data["expires_at"],
            created_by=request.user,
        )
        messages.warning(
            request,
            format_html(
                "Copy this API token now; it is shown only this once and cannot be recovered: "
                "<code>{}</code>",
                issued.secret,
            ),
        )
        return issued.token

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:  # a new token was saved by api_token_issue in save_form
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:  # a token has no many-to-many fields or inlines to save when it is issued
            super().save_related(request, form, formsets, change)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        assert isinstance(request.user, User)
        count = services.api_tokens_revoke(
            token_ids=queryset.values_list("pk", flat=True), revoked_by=request.user
        )
        messages.success(
            request, f"{count} token{'s' if count != 1 else ''} revoked; they no longer work."
        )
