"""The demo: every living demo patient has a current twin, an earlier one to compare with, and the
readings since the earlier fit have been checked against it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from patients.models import Patient
from twins.models import TwinAlert, TwinSnapshot, TwinState
from twins.services import twin_status


@pytest.mark.django_db
def test_seed_demo_gives_every_patient_a_current_twin_and_raises_some_alerts() -> None:
    out = io.StringIO()
    call_command("seed_demo", "--patients", "30", stdout=out)
    living = Patient.objects.filter(deceased_at__isnull=True)
    assert living.count() > 20
    for state in TwinState.objects.filter(patient__in=living).select_related("latest"):
        assert twin_status(state)["state"] == "current"
    assert (
        TwinState.objects.filter(patient__in=living, latest__isnull=False).count() == living.count()
    )
    assert TwinSnapshot.objects.filter(patient__in=living).count() == 2 * living.count()
    assert TwinAlert.objects.filter(acknowledged_at__isnull=True).exists()
    assert "alerts raised" in out.getvalue()
    assert "second factor: add the key" in out.getvalue()  # the demo data manager's
    # seeding again changes nothing
    call_command("seed_demo", "--patients", "30", stdout=io.StringIO())
    assert TwinSnapshot.objects.filter(patient__in=living).count() == 2 * living.count()
