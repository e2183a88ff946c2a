"""Property 3: clinicians cannot reach the admin; data managers and administrators reach it only
after the code of their authenticator app (TOTP), through the site's sign-in."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.second_factor import totp_code, totp_device, verified_login

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


def sign_in(client: Client, username: str, next_url: str = "") -> object:
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(reverse("login"), data)


def signed_in_user_id(client: Client) -> object:
    return client.session.get("_auth_user_id")


def test_a_clinician_cannot_reach_the_admin(clinician) -> None:
    client = Client()
    response = sign_in(client, "ana.gp")
    assert response.status_code == 302 and response["Location"] == reverse("patients:list")
    assert signed_in_user_id(client) == str(clinician.pk)

    for path in ("/admin/", "/admin/patients/patient/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    refused = client.get("/admin/login/?next=/admin/")
    assert refused.status_code == 403
    assert b"does not have access to data management" in refused.content


def test_a_clinician_with_an_authenticator_still_cannot_reach_the_admin(clinician) -> None:
    client = verified_login(Client(), clinician)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/login/").status_code == 403


def test_a_data_manager_after_the_password_alone_is_not_signed_in(data_manager) -> None:
    totp_device(data_manager)
    client = Client()
    response = sign_in(client, "dana.dm", next_url="/admin/")
    assert response.status_code == 302 and response["Location"] == reverse("login-code")
    assert signed_in_user_id(client) is None

    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/"
    step = client.get(reverse("login-code"))
    assert step.status_code == 200 and b"Enter your code" in step.content


def test_a_data_manager_reaches_the_admin_after_the_code(data_manager) -> None:
    device = totp_device(data_manager)
    client = Client()
    sign_in(client, "dana.dm", next_url="/admin/patients/patient/")
    response = client.post(reverse("login-code"), {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == "/admin/patients/patient/"
    assert signed_in_user_id(client) == str(data_manager.pk)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/patients/patient/").status_code == 200


def test_without_a_next_address_staff_land_on_the_admin(data_manager) -> None:
    device = totp_device(data_manager)
    client = Client()
    sign_in(client, "dana.dm")
    response = client.post(reverse("login-code"), {"code": totp_code(device)})
    assert response["Location"] == reverse("admin:index")


def test_a_staff_session_started_without_the_code_is_refused(data_manager) -> None:
    # any way to a session that skips the code step (a password reset that signs in, say)
    client = Client()
    client.force_login(data_manager)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    refused = client.get("/admin/login/")
    assert refused.status_code == 403 and b"authenticator" in refused.content


def test_the_admins_own_login_form_signs_nobody_in(data_manager) -> None:
    totp_device(data_manager)
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "dana.dm", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/"
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302


def test_staff_without_an_authenticator_enrol_one_and_confirm_it_with_a_code(
    data_manager,
) -> None:
    client = Client()
    response = sign_in(client, "dana.dm", next_url="/admin/")
    assert response.status_code == 302 and response["Location"] == reverse("login-enrol")
    # the code step sends them back to enrol while they have no confirmed device
    assert client.get(reverse("login-code"))["Location"] == reverse("login-enrol")

    page = client.get(reverse("login-enrol"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'viewBox="0 0' in html  # the QR code is drawn in the page
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched elsewhere
    device = TOTPDevice.objects.get(user=data_manager)
    assert not device.confirmed
    key = "".join(re.search(r'<code id="totp-key">([A-Z2-7 ]+)</code>', html).group(1).split())
    assert device.config_url.split("secret=")[1].startswith(key)

    # unconfirmed: not yet a second factor
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302
    wrong = client.post(reverse("login-enrol"), {"code": "000000"})
    assert wrong.status_code == 200 and b"not right" in wrong.content
    device.refresh_from_db()
    assert not device.confirmed

    device.throttle_reset()  # the wrong code's wait (property 18 tests it)
    response = client.post(reverse("login-enrol"), {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200

    # next time: the code step, no new key
    later = Client()
    assert sign_in(later, "dana.dm")["Location"] == reverse("login-code")
    assert later.get(reverse("login-enrol"))["Location"] == reverse("login-code")
    assert TOTPDevice.objects.filter(user=data_manager).count() == 1


def test_each_sign_in_enrols_a_new_key_so_a_key_seen_earlier_is_worthless(data_manager) -> None:
    first = Client()
    sign_in(first, "dana.dm")
    first.get(reverse("login-enrol"))
    first_key = TOTPDevice.objects.get(user=data_manager).key

    second = Client()
    sign_in(second, "dana.dm")
    second.get(reverse("login-enrol"))
    device = TOTPDevice.objects.get(user=data_manager)
    assert device.key != first_key and not device.confirmed

    # the first browser's device is gone: its code step starts a new enrolment
    first.get(reverse("login-enrol"))
    assert TOTPDevice.objects.filter(user=data_manager).count() == 1
    assert TOTPDevice.objects.get(user=data_manager).key not in (first_key, device.key)


def test_the_demo_data_manager_signs_in_with_the_published_demo_key(db) -> None:
    from patients.demo import DEMO_PASSWORD, DEMO_TOTP_KEY, demo_seed

    logins = demo_seed(patients=0, progress=lambda message: None)
    [manager] = [login for login in logins if login.totp_key]
    device = TOTPDevice.objects.get(user__username=manager.username, confirmed=True)
    assert device.key == DEMO_TOTP_KEY
    assert manager.totp_uri.startswith("otpauth://totp/TwinPortal%3Adatamanager?secret=")
    assert "".join(manager.totp_key.split()) in manager.totp_uri

    client = Client()
    client.post(reverse("login"), {"username": manager.username, "password": DEMO_PASSWORD})
    response = client.post(reverse("login-code"), {"code": totp_code(device)})
    assert response["Location"] == reverse("admin:index")
    assert client.get("/admin/").status_code == 200
