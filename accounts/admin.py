from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

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
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("TwinPortal", {"fields": ("role", "professional_role")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("TwinPortal", {"fields": ("role", "professional_role")}),
    )
