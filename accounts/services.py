"""Writes for accounts: creating users with a role keeps ``is_staff`` consistent with it."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.models import Role, User


def user_create(
    *,
    username: str,
    password: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    professional_role: str = "",
) -> User:
    """Create a user; data managers and administrators are staff (admin site), clinicians are not.

    One account per person: a username that differs from an existing one only in case is refused,
    since the audit names people by username and ``Ana.GP`` beside ``ana.gp`` would read as one.
    """
    if role not in Role.values:
        raise ValueError(f"role must be one of {', '.join(Role.values)}, got {role!r}")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    user = User(
        username=username,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
        professional_role=professional_role,
        is_staff=role in (Role.DATA_MANAGER, Role.ADMINISTRATOR),
        is_superuser=role == Role.ADMINISTRATOR,
    )
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user
