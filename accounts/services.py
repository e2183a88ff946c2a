"""Writes for accounts: creating users with a role keeps ``is_staff`` consistent with it, and
disabling them ends their sessions for good."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import F

from accounts.models import Role, User

logger = logging.getLogger(__name__)


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


def users_disable(*, user_ids: Iterable[int]) -> int:
    """Disable the accounts still active; returns how many were.

    Each one's session generation moves on in the same UPDATE, so their sessions
    end now and stay ended if the account is enabled again.
    """
    ids = list(user_ids)
    count = User.objects.filter(pk__in=ids, is_active=True).update(
        is_active=False, session_generation=F("session_generation") + 1
    )
    logger.info("accounts disabled", extra={"disabled": count, "asked": len(ids)})
    return count
