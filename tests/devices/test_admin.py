"""Device tokens in the admin site: issued with the secret shown once, revoked for good, data managers only."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from devices.models import DeviceToken
from tests.devices.conftest import bp, send
from tests.second_factor import verified_login

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:devices_devicetoken_changelist"


def signed_in(user) -> Client:
    client = Client()
    verified_login(client, user)
    return client


def test_a_data_manager_issues_a_token_and_sees_the_secret_once(data_manager, patient) -> None:
    client = signed_in(data_manager)

    response = client.post(
        reverse("admin:devices_devicetoken_add"),
        {
            "patient": patient.pk,
            "kind": "bp_cuff",
            "label": "Omron cuff at home",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    shown = re.findall(r"tpd_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}", response.content.decode())
    assert len(shown) == 1
    token = DeviceToken.objects.get()
    assert (token.patient, token.kind, token.created_by) == (patient, "bp_cuff", data_manager)
    assert send(shown[0], [bp("r1")]).status_code == 201
    for page in (reverse(CHANGELIST), reverse("admin:devices_devicetoken_change", args=[token.pk])):
        body = client.get(page).content.decode()
        assert shown[0] not in body and token.secret_sha256 not in body
        assert f"tpd_{token.prefix}" in body


def test_the_list_shows_patient_kind_label_prefix_status_and_last_use(
    data_manager, cuff, issue
) -> None:
    revoked = issue("scale")
    client = signed_in(data_manager)
    client.post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [revoked.token.pk]},
    )
    send(cuff.secret, [bp("r1")])

    body = client.get(reverse(CHANGELIST)).content.decode()

    for text in ("Lovelace", "Blood-pressure cuff", "bp_cuff at home", "Active", "Revoked"):
        assert text in body
    assert cuff.token.secret_sha256 not in body
    active_only = client.get(reverse(CHANGELIST), {"status": "active"}).content.decode()
    assert f"tpd_{cuff.token.prefix}" in active_only
    assert f"tpd_{revoked.token.prefix}" not in active_only


def test_a_data_manager_revokes_tokens_and_they_stop_working(data_manager, cuff, issue) -> None:
    other = issue("glucose_meter")

    response = signed_in(data_manager).post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [cuff.token.pk, other.token.pk]},
        follow=True,
    )

    assert "2 tokens revoked" in response.content.decode()
    assert set(DeviceToken.objects.values_list("revoked_by", flat=True)) == {data_manager.pk}
    assert send(cuff.secret, [bp("r1")]).status_code == 401


def test_a_revoked_token_cannot_be_edited_back_to_active(data_manager, cuff) -> None:
    client = signed_in(data_manager)
    client.post(
        reverse(CHANGELIST), {"action": "revoke_selected", "_selected_action": [cuff.token.pk]}
    )
    revoked_at = DeviceToken.objects.get().revoked_at

    client.post(
        reverse("admin:devices_devicetoken_change", args=[cuff.token.pk]),
        {"label": "renamed", "revoked_at": "", "revoked_by": "", "expires_at_0": "2099-01-01"},
    )

    token = DeviceToken.objects.get()
    assert token.label == "renamed"
    assert token.revoked_at == revoked_at and token.expires_at is None
    assert send(cuff.secret, [bp("r1")]).status_code == 401


def test_tokens_cannot_be_deleted_only_revoked(data_manager, cuff) -> None:
    url = reverse("admin:devices_devicetoken_delete", args=[cuff.token.pk])
    assert signed_in(data_manager).get(url).status_code == 403
    assert DeviceToken.objects.exists()


def test_a_clinician_cannot_reach_the_token_admin(clinician, cuff) -> None:
    for url in (
        reverse(CHANGELIST),
        reverse("admin:devices_devicetoken_add"),
        reverse("admin:devices_devicetoken_change", args=[cuff.token.pk]),
    ):
        response = signed_in(clinician).get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
