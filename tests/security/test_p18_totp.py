"""Property 18: staff sign in with a TOTP code after their password, clinicians with their
password; a code works once, wrong codes are throttled, and a new password (set by an
administrator: there is no self-service reset) does not go around the code."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.second_factor import totp_code, totp_device, verified_login

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def sign_in(client: Client, username: str, password: str = PASSWORD) -> object:
    return client.post(reverse("login"), {"username": username, "password": password})


def test_clinicians_are_not_asked_for_a_code(clinician) -> None:
    client = Client()
    response = sign_in(client, "ana.gp")
    assert response.status_code == 302 and response["Location"] == reverse("patients:list")
    assert client.session["_auth_user_id"] == str(clinician.pk)
    assert client.get(reverse("login-code"))["Location"] == reverse("login")


@pytest.mark.parametrize("role", ["data_manager", "administrator"])
def test_staff_are_asked_for_a_code_after_their_password(make_user, role) -> None:
    user = make_user("staff.person", role=role)
    device = totp_device(user)
    client = Client()
    assert sign_in(client, "staff.person")["Location"] == reverse("login-code")
    assert client.session.get("_auth_user_id") is None
    assert client.get(reverse("patients:list")).status_code == 302
    response = client.post(reverse("login-code"), {"code": totp_code(device)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_code_works_once(data_manager) -> None:
    device = totp_device(data_manager)
    code = totp_code(device)
    first = Client()
    sign_in(first, "dana.dm")
    assert first.post(reverse("login-code"), {"code": code}).status_code == 302
    replay = Client()
    sign_in(replay, "dana.dm")
    response = replay.post(reverse("login-code"), {"code": code})
    assert response.status_code == 200 and b"already been used" in response.content
    assert replay.session.get("_auth_user_id") is None


def test_after_a_wrong_code_even_the_right_one_waits_and_each_failure_doubles_the_wait(
    data_manager,
) -> None:
    device = totp_device(data_manager)
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC).timestamp()
    client = Client()
    with time_machine.travel(start, tick=False):
        sign_in(client, "dana.dm")
        assert client.post(reverse("login-code"), {"code": "000000"}).status_code == 200
        refused = client.post(reverse("login-code"), {"code": totp_code(device)})
        assert b"wait 1 second," in refused.content
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # a refused code is not checked at all
    with time_machine.travel(start + 1.5, tick=False):
        assert client.post(reverse("login-code"), {"code": "111111"}).status_code == 200
        refused = client.post(reverse("login-code"), {"code": totp_code(device)})
        assert b"wait 2 seconds" in refused.content
    with time_machine.travel(start + 4, tick=False):
        response = client.post(reverse("login-code"), {"code": totp_code(device)})
        assert response.status_code == 302
        assert client.session["_auth_user_id"] == str(data_manager.pk)


def test_the_code_step_lapses_five_minutes_after_the_password(data_manager) -> None:
    device = totp_device(data_manager)
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC).timestamp()
    client = Client()
    with time_machine.travel(start, tick=False):
        sign_in(client, "dana.dm")
    with time_machine.travel(start + 5 * 60 + 1, tick=False):
        response = client.post(reverse("login-code"), {"code": totp_code(device)})
        assert response.status_code == 302 and response["Location"] == reverse("login")
        assert client.session.get("_auth_user_id") is None


def test_a_new_password_set_by_an_administrator_does_not_go_around_the_code(
    make_user, data_manager
) -> None:
    device = totp_device(data_manager)
    admin = verified_login(Client(), make_user("root.admin", role="administrator"))
    new_password = "a-fresh-password-after-reset"
    response = admin.post(
        reverse("admin:auth_user_password_change", args=[data_manager.pk]),
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    data_manager.refresh_from_db()
    assert data_manager.check_password(new_password)

    client = Client()
    response = sign_in(client, "dana.dm", new_password)
    # the same authenticator is asked for: no new enrolment, nobody signed in yet
    assert response["Location"] == reverse("login-code")
    assert client.get(reverse("login-enrol"))["Location"] == reverse("login-code")
    assert list(TOTPDevice.objects.filter(user=data_manager)) == [device]
    assert client.session.get("_auth_user_id") is None
    assert client.get("/admin/").status_code == 302
    assert client.post(reverse("login-code"), {"code": totp_code(device)}).status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/reset/MQ/set-password/", "/password-reset/"]
)
def test_there_is_no_self_service_password_reset(path, data_manager) -> None:
    assert Client().get(path).status_code == 404


def test_a_disabled_account_cannot_finish_its_sign_in(data_manager) -> None:
    device = totp_device(data_manager)
    client = Client()
    sign_in(client, "dana.dm")
    type(data_manager).objects.filter(pk=data_manager.pk).update(is_active=False)
    response = client.post(reverse("login-code"), {"code": totp_code(device)})
    assert response["Location"] == reverse("login")
    assert client.session.get("_auth_user_id") is None


def test_a_clinician_signing_in_drops_an_unfinished_staff_sign_in(clinician, data_manager) -> None:
    totp_device(data_manager)
    client = Client()
    sign_in(client, "dana.dm")
    sign_in(client, "ana.gp")
    assert client.get(reverse("login-code"))["Location"] == reverse("login")
    assert client.session["_auth_user_id"] == str(clinician.pk)
