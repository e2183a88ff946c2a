"""``generate_cohort`` loads synthetic patients in bulk, in parts or in parallel, without duplicates."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from patients.models import ClinicalNote, ImportBatch, Observation, Patient


@pytest.mark.django_db(transaction=True)
def test_it_loads_a_cohort_with_two_workers_and_extends_it_without_duplicates() -> None:
    out = io.StringIO()
    call_command(
        "generate_cohort", "--patients", "6", "--workers", "2", "--no-progress", stdout=out
    )
    assert Patient.objects.count() == 6
    assert Observation.objects.filter(parent__isnull=False).exists()  # BP components
    assert ClinicalNote.objects.count() >= 6 * 8
    assert "Loaded 6 patients" in out.getvalue()

    call_command("generate_cohort", "--patients", "8", "--no-progress", stdout=io.StringIO())
    assert Patient.objects.count() == 8  # indices 0-5 were present and skipped
    assert set(ImportBatch.objects.values_list("status", flat=True)) == {"succeeded"}
