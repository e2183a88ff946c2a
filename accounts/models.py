"""One account per person (no shared accounts), each with one role, and the API tokens people and
integrations sign API calls with."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pgtrigger
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.crypto import salted_hmac


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    DATA_MANAGER = "data_manager", "Data manager"
    ADMINISTRATOR = "administrator", "Administrator"


class User(AbstractUser):
    """A person who signs in. Clinicians see patients through care teams; data managers use the admin."""

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLINICIAN)
    professional_role = models.CharField(
        max_length=80,
        blank=True,
        help_text="Clinical role shown on notes, e.g. general practitioner, cardiologist, diabetes nurse.",
    )
    practitioner_id = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="FHIR Practitioner id, linking imported notes to this account.",
    )
    session_generation = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Goes up when the account is disabled or its password changes: every session "
        "and API token of an earlier generation stops working, and enabling the account again "
        "does not bring them back.",
    )

    class Meta:
        ordering = ["username"]
        # save() below starts a generation for the application's writes; this does it for every
        # other writer (QuerySet.update(), SQL), so no way of disabling an account leaves its
        # sessions and tokens to come back when it is enabled again
        triggers = [
            pgtrigger.Trigger(
                name="disabling_ends_sessions",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(
                    old__is_active=True,
                    new__is_active=False,
                    new__session_generation=pgtrigger.F("old__session_generation"),
                ),
                func="NEW.session_generation := OLD.session_generation + 1; RETURN NEW;",
            )
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        # ``_password`` holds the new password between set_password() and save(); a hash upgrade
        # at sign-in clears it first, so only a real change (or disabling) starts a generation.
        new_password = self._password  # type: ignore[attr-defined]  # set by Django, not in the stubs
        update_fields = kwargs.get("update_fields")
        saved = None if update_fields is None else set(update_fields)
        password_changed = new_password is not None and (saved is None or "password" in saved)
        disabled = (saved is None or "is_active" in saved) and self._being_disabled()
        if self.pk is not None and (password_changed or disabled):
            self.session_generation += 1
            if saved is not None:
                kwargs["update_fields"] = {*saved, "session_generation"}
        super().save(*args, **kwargs)

    def _being_disabled(self) -> bool:
        """Whether this save turns an active account into a disabled one."""
        if self.is_active or self.pk is None:
            return False
        return type(self)._default_manager.filter(pk=self.pk, is_active=True).exists()

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Django's own hash (of the password hash) with the generation folded in, so a session
        # started before the account was disabled fails verification after it is enabled again.
        # Overrides the private method both get_session_auth_hash and its fallbacks (for
        # SECRET_KEY_FALLBACKS) call.
        return salted_hmac(
            "accounts.User.get_session_auth_hash",
            f"{self.password}:{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.CLINICIAN

    @property
    def is_data_manager(self) -> bool:
        return self.role == Role.DATA_MANAGER


class ApiScope(models.TextChoices):
    READ = "read", "Read only (integrations reading records)"
    IMPORT = "import", "FHIR bundle import"


class ApiTokenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Ended (password changed or account disabled)"


class ApiToken(models.Model):
    """A person's or an integration's API credential: it acts as its user, within one scope.

    As with device tokens, only the SHA-256 of the secret and a short non-secret prefix are
    stored. ``session_generation`` is the user's at issue: a password change or disabling the
    account moves the user's on, which ends the token. Revoked and expired tokens stay as the
    record of who could call the API and when.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=120, help_text="What uses this token, e.g. 'Lab results feed (nightly import)'."
    )
    scope = models.CharField(max_length=10, choices=ApiScope.choices)
    prefix = models.CharField(
        max_length=8, db_index=True, editable=False, help_text="Not secret: finds the token."
    )
    secret_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    session_generation = models.PositiveIntegerField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token {self.display_prefix} ({self.name})"

    @property
    def display_prefix(self) -> str:
        return f"tpa_{self.prefix}…"

    def status_at(self, now: dt.datetime, *, user_generation: int) -> ApiTokenStatus:
        if self.revoked_at is not None:
            return ApiTokenStatus.REVOKED
        if user_generation != self.session_generation:
            return ApiTokenStatus.SUPERSEDED
        if self.expires_at <= now:
            return ApiTokenStatus.EXPIRED
        return ApiTokenStatus.ACTIVE
