"""Property 17: after 5 failed attempts a user name is locked out from that address (HTTP 429) for
the cool-off period; wrong authenticator codes count as failures; the admin is no way around it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.second_factor import totp_code, totp_device

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def attempt(client: Client, username: str, password: str, ip: str = "10.0.0.1") -> object:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def fail_five_times(client: Client, username: str = "ana.gp", ip: str = "10.0.0.1") -> None:
    for _ in range(4):
        assert attempt(client, username, "wrong-password", ip).status_code == 200
    # the fifth failure locks out at once
    assert attempt(client, username, "wrong-password", ip).status_code == 429


def test_the_sixth_attempt_is_refused_with_429_even_with_the_right_password(clinician) -> None:
    client = Client()
    fail_five_times(client)
    response = attempt(client, "ana.gp", PASSWORD)
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert response["Content-Security-Policy"]
    assert client.session.get("_auth_user_id") is None
    assert client.get(reverse("patients:list")).status_code == 302


def test_the_lockout_is_keyed_on_user_name_and_address_together(clinician, other_clinician) -> None:
    fail_five_times(Client(), "ana.gp", "10.0.0.1")
    # the same person from another address
    elsewhere = Client()
    assert attempt(elsewhere, "ana.gp", PASSWORD, "10.0.0.2").status_code == 302
    assert elsewhere.session["_auth_user_id"] == str(clinician.pk)
    # another person from the same address
    colleague = Client()
    assert attempt(colleague, "ben.cardio", PASSWORD, "10.0.0.1").status_code == 302
    assert colleague.session["_auth_user_id"] == str(other_clinician.pk)


def test_the_right_password_works_again_after_the_cool_off(clinician) -> None:
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        fail_five_times(Client())
    minutes = settings.AXES_COOLOFF_TIME.total_seconds() / 60
    assert minutes == 15
    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        assert attempt(Client(), "ana.gp", PASSWORD).status_code == 429
    # that attempt started the wait again
    with time_machine.travel(start + dt.timedelta(minutes=14 + 15, seconds=1), tick=False):
        client = Client()
        assert attempt(client, "ana.gp", PASSWORD).status_code == 302
        assert client.session["_auth_user_id"] == str(clinician.pk)


def test_the_cool_off_comes_from_twinportal_lockout_minutes() -> None:
    code = "from django.conf import settings; print(settings.AXES_COOLOFF_TIME.total_seconds())"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "twinportal.settings.test",
        "TWINPORTAL_LOCKOUT_MINUTES": "40",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "2400.0"


def test_wrong_authenticator_codes_count_and_lock_out(data_manager) -> None:
    device = totp_device(data_manager)
    client = Client()
    assert attempt(client, "dana.dm", PASSWORD)["Location"] == reverse("login-code")
    statuses = [
        client.post(reverse("login-code"), {"code": "000000"}, REMOTE_ADDR="10.0.0.1").status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    # locked out: the right code is not even checked, and the password step is closed too
    right = client.post(reverse("login-code"), {"code": totp_code(device)}, REMOTE_ADDR="10.0.0.1")
    assert right.status_code == 429
    assert client.session.get("_auth_user_id") is None
    assert attempt(Client(), "dana.dm", PASSWORD).status_code == 429


def test_the_admin_is_no_way_around_the_lockout(data_manager) -> None:
    totp_device(data_manager)
    fail_five_times(Client(), "dana.dm")
    client = Client()
    # the admin's login address has no form of its own: it sends people to the sign-in
    response = client.post(
        "/admin/login/", {"username": "dana.dm", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.session.get("_auth_user_id") is None
    assert attempt(client, "dana.dm", PASSWORD).status_code == 429
