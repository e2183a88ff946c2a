"""Property 9, end to end in Debian's Chromium on a real idle timeout (nothing deleted behind the
page's back): the warning appears before the session ends, the session really ends on the server,
and a note typed before and after the end is kept in the tab and saved as a draft after signing in
again. The warning's button is tested in tests/browser/test_session_warning.py, a draft kept
across a session deleted on the server in tests/browser/test_note_drafts.py."""

from __future__ import annotations

import time

import pytest

from tests.browser.pages import csp_violations, new_page
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IDLE_SECONDS = 8  # the warning comes at half of it for so short a session


def _wait_for(page, selector: str, *texts: str, timeout: float = 30) -> str:
    box = page.locator(selector)
    deadline = time.monotonic() + timeout
    while not any(t in box.inner_text() for t in texts):
        assert time.monotonic() < deadline, box.inner_text()
        time.sleep(0.2)
    return box.inner_text()


def test_the_idle_timeout_is_announced_and_a_note_being_typed_survives_it(
    browser,
    live_server,
    settings,
    clinician,
    care_team,
    imported,
) -> None:
    from patients.models import ClinicalNote

    settings.SESSION_COOKIE_AGE = IDLE_SECONDS
    base, patient = live_server.url, imported[0]
    page = new_page(browser, base)
    page.on("dialog", lambda d: pytest.fail(f"unexpected dialog: {d.message}"))
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    page.goto(f"{base}/patients/{patient.pk}/notes/new/")
    page.fill("#id_text", "Home readings reviewed.")
    _wait_for(page, "#autosave-status", "Draft saved")
    edit_url = page.url

    # idle: first the warning, then the end, both in the page
    warning = _wait_for(page, "#session-warning", "Your session ends at")
    assert "a note you are typing is kept" in warning
    _wait_for(page, "#session-warning", "Your session has ended")
    time.sleep(1.5)  # the server's expiry, counted from the last autosave, has passed too

    page.type("#id_text", " Plan: recheck in two weeks.")
    _wait_for(page, "#autosave-status", "Not saved")
    assert ClinicalNote.objects.get(patient=patient).text == "Home readings reviewed."

    page.locator("#session-warning").get_by_role("link", name="Sign in again").click()
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", "ana.gp")
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#note-form")
    page.wait_for_load_state("load")
    assert page.url == edit_url
    assert page.input_value("#id_text").endswith("Plan: recheck in two weeks.")
    _wait_for(page, "#autosave-status", "Draft saved at")
    note = ClinicalNote.objects.get(patient=patient)
    assert note.text == "Home readings reviewed. Plan: recheck in two weeks."
    assert not note.is_signed
    assert csp_violations(page) == []
