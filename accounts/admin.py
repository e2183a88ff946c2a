from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import User


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
            f"{count} account{'s' if count != 1 else ''} disabled; their sessions have ended.",
        )
