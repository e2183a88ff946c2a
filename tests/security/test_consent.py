"""Research consent: who recorded it and when, withdrawn when and by whom, history kept."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from research.models import ResearchConsent
from research.selectors import patients_consenting
from research.services import ConsentError, consent_record, consent_withdraw
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def signed_in(user) -> Client:
    client = Client()
    verified_login(client, user)
    return client


def test_it_records_who_gave_consent_and_when(data_manager, imported) -> None:
    consent = consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    consent.refresh_from_db()
    assert (consent.recorded_by, consent.recorded_at) == (data_manager, T0)
    assert consent.is_active and consent.withdrawn_by is None


def test_a_withdrawal_keeps_the_grant_and_a_new_consent_is_a_new_row(
    data_manager, make_user, imported
) -> None:
    other = make_user("otto.dm", role="data_manager")
    first = consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    consent_withdraw(consent=first, withdrawn_by=other, now=T0 + dt.timedelta(days=10))
    second = consent_record(
        patient=imported[0], recorded_by=data_manager, now=T0 + dt.timedelta(days=20)
    )

    rows = list(ResearchConsent.objects.filter(patient=imported[0]).order_by("recorded_at"))
    assert [r.pk for r in rows] == [first.pk, second.pk]
    assert (rows[0].recorded_by, rows[0].recorded_at) == (data_manager, T0)
    assert (rows[0].withdrawn_by, rows[0].withdrawn_at) == (other, T0 + dt.timedelta(days=10))
    assert rows[1].is_active


def test_it_refuses_a_second_active_consent(data_manager, imported) -> None:
    consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    with pytest.raises(ConsentError):
        consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    assert ResearchConsent.objects.count() == 1


def test_it_refuses_to_withdraw_a_consent_twice(data_manager, make_user, imported) -> None:
    consent = consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    consent_withdraw(consent=consent, withdrawn_by=data_manager, now=T0 + dt.timedelta(days=1))
    with pytest.raises(ConsentError):
        consent_withdraw(
            consent=consent,
            withdrawn_by=make_user("otto.dm", role="data_manager"),
            now=T0 + dt.timedelta(days=2),
        )
    consent.refresh_from_db()
    assert (consent.withdrawn_by, consent.withdrawn_at) == (data_manager, T0 + dt.timedelta(days=1))


def test_the_database_holds_one_active_consent_per_patient_and_a_withdrawal_names_its_author(
    data_manager, imported
) -> None:
    ResearchConsent.objects.create(patient=imported[0], recorded_by=data_manager, recorded_at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ResearchConsent.objects.create(
            patient=imported[0], recorded_by=data_manager, recorded_at=T0
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ResearchConsent.objects.create(
            patient=imported[1], recorded_by=data_manager, recorded_at=T0, withdrawn_at=T0
        )


def test_a_consent_is_in_force_from_its_recording_until_its_withdrawal(
    data_manager, imported
) -> None:
    consent = consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    consent_withdraw(consent=consent, withdrawn_by=data_manager, now=T0 + dt.timedelta(days=30))
    consent_record(patient=imported[1], recorded_by=data_manager, now=T0 + dt.timedelta(days=5))

    def consenting(at: dt.datetime) -> list[object]:
        return list(patients_consenting(at=at))

    assert consenting(T0 - dt.timedelta(seconds=1)) == []
    assert consenting(T0 + dt.timedelta(days=1)) == [imported[0]]
    assert consenting(T0 + dt.timedelta(days=6)) == sorted(imported[:2], key=lambda p: p.pk)
    assert consenting(T0 + dt.timedelta(days=31)) == [imported[1]]


def test_a_data_manager_records_consent_in_the_admin(data_manager, imported) -> None:
    client = signed_in(data_manager)
    response = client.post(
        reverse("admin:research_researchconsent_add"), {"patient": imported[2].pk}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    consent = ResearchConsent.objects.get()
    assert (consent.patient, consent.recorded_by, consent.is_active) == (
        imported[2],
        data_manager,
        True,
    )

    again = client.post(reverse("admin:research_researchconsent_add"), {"patient": imported[2].pk})
    assert again.status_code == 200
    assert "already has an active research consent" in again.content.decode()
    assert ResearchConsent.objects.count() == 1


def test_a_data_manager_withdraws_consent_with_the_admin_action_and_cannot_delete_it(
    data_manager, imported
) -> None:
    consent = consent_record(patient=imported[0], recorded_by=data_manager, now=T0)
    client = signed_in(data_manager)
    url = reverse("admin:research_researchconsent_changelist")
    assert "delete_selected" not in client.get(url).content.decode()

    response = client.post(url, {"action": "withdraw", "_selected_action": [consent.pk]})
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.withdrawn_by == data_manager and consent.withdrawn_at is not None

    deleted = client.post(
        reverse("admin:research_researchconsent_delete", args=[consent.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 403
    assert ResearchConsent.objects.filter(pk=consent.pk).exists()


def test_clinicians_cannot_reach_consents(clinician) -> None:
    response = signed_in(clinician).get(reverse("admin:research_researchconsent_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
