"""One account per person (no shared accounts), each with one role."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


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

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.CLINICIAN

    @property
    def is_data_manager(self) -> bool:
        return self.role == Role.DATA_MANAGER
