"""Property 5: every action has a unique actor. Usernames are unique (in any case), an account
belongs to one person; work done in the background records the user who asked for it or a named
system actor (``system:...``): what-if runs their submitting user, the nightly recompute and the
twin's reads a system actor, note summaries the clinician whose note triggered them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_database_refuses_a_second_account_with_the_same_username(clinician) -> None:
    from accounts.models import User

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(username=clinician.username)])


def test_a_username_differing_only_in_case_is_refused(make_user, clinician) -> None:
    with pytest.raises(ValidationError):
        make_user(clinician.username.upper())


def test_every_account_has_its_own_person(clinician, other_clinician, data_manager) -> None:
    """The fixtures' accounts as the services create them: one role each, a name for clinicians."""
    from accounts.models import User

    assert User.objects.values("username").distinct().count() == User.objects.count()
    assert clinician.get_full_name() and other_clinician.get_full_name()


def test_a_what_if_run_records_the_user_who_submitted_it(clinician, care_team, imported) -> None:
    from twins.models import WhatIfRun

    patient = imported[0]
    client = Client()
    client.force_login(clinician)
    page = client.post(
        reverse("patients:whatif-new", args=[patient.pk]),
        {
            "plan0-name": "ACE inhibitor",
            "plan0-item0_intervention": "ace_inhibitor",
            "plan0-item0_dose": "1",
            "plan0-item0_start": dt.date.today().isoformat(),
        },
    )
    assert page.status_code == 302
    api = client.post(
        f"/api/v1/patients/{patient.pk}/whatif/",
        {
            "name": "",
            "plans": [
                {
                    "name": "B",
                    "items": [{"intervention": "statin", "start": dt.date.today().isoformat()}],
                }
            ],
        },
        content_type="application/json",
    )
    assert api.status_code == 202
    runs = WhatIfRun.objects.filter(patient=patient)
    assert runs.count() == 2
    assert set(runs.values_list("requested_by", flat=True)) == {clinician.pk}


def test_the_nightly_recompute_records_a_named_system_actor(care_team, imported) -> None:
    from audit.models import AuditEvent
    from twins import services
    from twins.models import RecomputeRun, TwinSnapshot
    from twins.tasks import twin_nightly_dispatch

    run = RecomputeRun.objects.get(pk=twin_nightly_dispatch.apply().get())
    assert run.triggered_by == "system:nightly"
    assert run.task_id

    services.snapshots_compute(patient_ids=[imported[0].pk], trigger="test")
    assert TwinSnapshot.objects.filter(patient=imported[0]).exists()
    reads = AuditEvent.objects.filter(patient_id=imported[0].pk)
    assert reads.exists()
    assert set(reads.values_list("actor_name", flat=True)) == {services.TWIN_ACTOR}
    assert services.TWIN_ACTOR.startswith("system:")
    assert set(reads.values_list("actor", flat=True)) == {None}


def test_a_recompute_started_by_command_names_it(imported) -> None:
    from django.core.management import call_command

    from twins.models import RecomputeRun

    call_command("twin_recompute", stdout=open("/dev/null", "w"))  # noqa: SIM115
    run = RecomputeRun.objects.latest("started_at")
    assert run.triggered_by and ":" in run.triggered_by


def test_every_recorded_actor_is_a_user_or_a_named_system_actor(
    clinician, care_team, imported
) -> None:
    """After a clinician's day and the twin's work, no audit row or run is without its actor."""
    from audit.models import AuditEvent
    from twins import services
    from twins.models import RecomputeRun

    client = Client()
    client.force_login(clinician)
    client.get(reverse("patients:twin", args=[imported[0].pk]))
    client.get(f"/api/v1/patients/{imported[1].pk}/fhir/")
    services.snapshots_compute(patient_ids=[imported[0].pk], trigger="test")
    services.recompute_run_start(patient_ids=[imported[0].pk])
    events = AuditEvent.objects.all()
    assert events.exists()
    for event in events:
        if event.actor_id is not None:
            assert event.actor_name == clinician.username
        else:
            assert event.actor_name.startswith("system:"), event.actor_name
    for run in RecomputeRun.objects.all():
        assert run.triggered_by.startswith(("system:", "command:")), run.triggered_by
