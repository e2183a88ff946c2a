"""Property 23 in Debian's Chromium: sign in, a patient list of the care team's patients only, a
twin page with its charts rendered (no CSP violation), and the session ended by the idle timeout;
a data manager's second factor (the code of an authenticator app, and enrolling one) on the way to
the admin site. The idle warning and a draft kept across the timeout are property 9's run."""

from __future__ import annotations

import time

import pytest

from tests.browser.pages import check_page, csp_violations, new_page
from tests.browser.test_sign_in import sign_in
from tests.second_factor import totp_code, totp_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_signs_in_sees_the_team_and_a_twin_and_is_signed_out_when_idle(
    browser,
    live_server,
    settings,
    clinician,
    care_team,
    imported,
) -> None:
    from twins import services

    services.snapshots_compute(patient_ids=[p.pk for p in imported[:2]], trigger="test")
    settings.SESSION_COOKIE_AGE = 10
    base = live_server.url
    page = new_page(browser, base)
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    text = page.locator("#patient-list").inner_text()
    assert page.locator("#patient-list tbody tr").count() == 2
    assert all(p.mrn in text for p in imported[:2])
    assert not any(p.mrn in text for p in imported[2:])

    page.goto(f"{base}/patients/{imported[0].pk}/")
    page.wait_for_selector("#twin-chart[data-rendered='1']")
    assert page.locator("#twin-chart .main-svg").count() >= 1
    assert csp_violations(page) == []

    box = page.locator("#session-warning")
    deadline = time.monotonic() + 30
    while "Your session has ended" not in box.inner_text():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.5)
    page.goto(f"{base}/")
    assert "/accounts/login/" in page.url


def test_a_data_manager_gives_the_code_of_their_app_to_reach_the_admin(
    browser, live_server, data_manager
) -> None:
    device = totp_device(data_manager)
    base = live_server.url
    page = new_page(browser, base)
    sign_in(page, base, "dana.dm", "a-long-test-password")
    page.wait_for_url("**/accounts/login/code/")
    assert page.locator("h1").inner_text() == "Enter your code"
    check_page(page, base, "sign-in-code")

    page.fill("#id_code", "000000")
    page.click("button[type=submit]")
    assert "not right" in page.locator("[role=alert]").inner_text()
    time.sleep(1.1)  # the wrong code's wait
    page.fill("#id_code", totp_code(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    assert "TwinPortal data management" in page.locator("#site-name").inner_text()
    assert csp_violations(page) == []

    page.click("#logout-form button")
    page.goto(f"{base}/admin/")
    assert "/accounts/login/" in page.url


def test_a_data_manager_without_an_app_enrols_one_on_the_way_in(
    browser, live_server, data_manager
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    base = live_server.url
    page = new_page(browser, base)
    page.goto(f"{base}/admin/")
    page.wait_for_url("**/accounts/login/?next=/admin/")
    page.fill("#id_username", "dana.dm")
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/login/enrol/")
    assert page.locator(".totp-qr svg").count() == 1
    assert page.locator(".totp-qr svg").bounding_box()["width"] >= 150
    check_page(page, base, "sign-in-enrol")

    device = TOTPDevice.objects.get(user=data_manager, confirmed=False)
    shown = "".join(page.locator("#totp-key").inner_text().split())
    assert f"secret={shown}" in device.config_url
    page.fill("#id_code", totp_code(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    device.refresh_from_db()
    assert device.confirmed
