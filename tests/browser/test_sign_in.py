"""A clinician signs in, sees only their care team's patients, and signs out."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_a_clinician_signs_in_and_sees_only_care_team_patients(
    page, live_server, clinician, care_team, imported
) -> None:
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
    assert page.locator("h1").inner_text() == "Sign in"
    screenshot(page, "login")

    sign_in(page, live_server.url, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    rows = page.locator("#patient-list tbody tr")
    assert rows.count() == 2
    text = page.locator("#patient-list").inner_text()
    for p in imported[:2]:
        assert p.mrn in text
    for p in imported[2:]:
        assert p.mrn not in text
    screenshot(page, "patient-list")

    page.click("text=Sign out")
    page.wait_for_url("**/accounts/login/")
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url


def test_a_wrong_password_shows_an_error_and_no_patients(
    page, live_server, clinician, care_team
) -> None:
    sign_in(page, live_server.url, "ana.gp", "not-the-password")
    assert (
        page.locator("[role=alert]")
        .inner_text()
        .startswith("Your username and password did not match")
    )
    assert page.locator("#patient-list").count() == 0
