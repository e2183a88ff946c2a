"""Writes for accounts: creating and disabling users, and issuing and revoking their API tokens."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from accounts.models import ApiScope, ApiToken, Role, User
from accounts.selectors import TOKEN_TAG, secret_sha256

logger = logging.getLogger(__name__)

#: ``last_used_at`` is written at most this often, not on every request of a busy integration.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


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

    Each one's session generation moves on in the same UPDATE, so their sessions and API tokens
    end now and stay ended if the account is enabled again.
    """
    ids = list(user_ids)
    count = User.objects.filter(pk__in=ids, is_active=True).update(
        is_active=False, session_generation=F("session_generation") + 1
    )
    logger.info("accounts disabled", extra={"disabled": count, "asked": len(ids)})
    return count


@dataclass(frozen=True)
class IssuedApiToken:
    token: ApiToken
    #: the whole token, to be shown once and never again (only its hash is stored)
    secret: str


def api_token_expiry_check(
    *, user: User, scope: str, expires_at: dt.datetime | None, now: dt.datetime
) -> dt.datetime:
    """The expiry a new token gets (the default when none is given); raises ValidationError when
    the token could not be issued: unknown scope, a disabled user, an import token for someone who
    may not import, an expiry in the past or beyond the maximum."""
    if scope not in ApiScope.values:
        raise ValidationError({"scope": f"Scope must be one of {', '.join(ApiScope.values)}."})
    if not user.is_active:
        raise ValidationError({"user": "This account is disabled."})
    if scope == ApiScope.IMPORT and not (user.is_data_manager or user.is_superuser):
        raise ValidationError({"scope": "Only data managers and administrators may import."})
    longest = dt.timedelta(days=settings.TWINPORTAL_API_TOKENS["max_days"])
    if expires_at is None:
        return now + dt.timedelta(days=settings.TWINPORTAL_API_TOKENS["default_days"])
    if expires_at <= now:
        raise ValidationError({"expires_at": "Choose a time in the future."})
    if expires_at > now + longest:
        raise ValidationError(
            {"expires_at": f"A token may last at most {longest.days} days; issue a new one then."}
        )
    return expires_at


def api_token_issue(
    *,
    user: User,
    name: str,
    scope: str,
    created_by: User,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> IssuedApiToken:
    """Create a token acting as ``user`` within ``scope``; the secret is in the answer only."""
    now = now or timezone.now()
    expires_at = api_token_expiry_check(user=user, scope=scope, expires_at=expires_at, now=now)
    prefix = secrets.token_urlsafe(6)
    secret = f"{TOKEN_TAG}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        prefix=prefix,
        secret_sha256=secret_sha256(secret),
        session_generation=user.session_generation,
        created_by=created_by,
        expires_at=expires_at,
    )
    logger.info(
        "api token issued",
        extra={"api_token": token.pk, "scope": scope, "user_id": user.pk, "by": created_by.pk},
    )
    return IssuedApiToken(token=token, secret=secret)


def api_tokens_revoke(
    *, token_ids: Iterable[int], revoked_by: User, now: dt.datetime | None = None
) -> int:
    """Revoke the tokens not yet revoked; returns how many were. Revocation cannot be undone."""
    ids = list(token_ids)
    count = ApiToken.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now(), revoked_by=revoked_by
    )
    logger.info(
        "api tokens revoked", extra={"revoked": count, "asked": len(ids), "user_id": revoked_by.pk}
    )
    return count


def api_token_touch(*, token: ApiToken, now: dt.datetime) -> None:
    """Record that the token was just used (to the minute: a busy caller costs no write a request)."""
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
