"""A note being typed survives the session ending: the tab keeps the text, and after signing in
again the draft is restored and saved (SECURITY.md, sessions, property 9)."""

from __future__ import annotations

import time

import pytest

from tests.browser.pages import csp_violations, new_page, shot
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _wait_for_status(page, *texts: str, timeout: float = 60) -> str:
    status = page.locator("#autosave-status")
    deadline = time.monotonic() + timeout
    while not any(t in status.inner_text() for t in texts):
        assert time.monotonic() < deadline, status.inner_text()
        time.sleep(0.3)
    return status.inner_text()


def test_a_draft_typed_when_the_session_ends_is_not_lost(
    browser, live_server, clinician, care_team, imported
) -> None:
    from django.contrib.sessions.models import Session

    from patients.models import ClinicalNote

    base = live_server.url
    patient = imported[0]
    page = new_page(browser, base)
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    page.goto(f"{base}/patients/{patient.pk}/notes/new/")
    page.fill("#id_text", "Seen today. BP 152/94 at home.")
    assert "Draft saved" in _wait_for_status(page, "Draft saved", "Not saved")
    edit_url = page.url
    assert "/edit/" in edit_url

    Session.objects.all().delete()  # the idle timeout ends the session on the server
    page.type("#id_text", " Plan: start amlodipine 5 mg.")
    assert "Not saved" in _wait_for_status(page, "Draft saved at", "Not saved")
    shot(page, "note-draft-session-ended")

    page.goto(f"{base}/accounts/login/?next={edit_url.removeprefix(base)}")
    page.fill("#id_username", "ana.gp")
    page.fill("#id_password", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_selector("#note-form")
    # the form is in the DOM before its deferred script has restored the tab's copy
    page.wait_for_load_state("load")
    assert "amlodipine" in page.input_value("#id_text")
    _wait_for_status(page, "Draft saved at")
    note = ClinicalNote.objects.get(patient=patient, author=clinician)
    assert note.text == "Seen today. BP 152/94 at home. Plan: start amlodipine 5 mg."
    assert not note.is_signed
    assert csp_violations(page) == []


def test_text_typed_before_the_draft_script_runs_is_saved_too(
    browser, live_server, clinician, care_team, imported
) -> None:
    """On a slow connection a clinician can type before note-draft.js has run, so no input event
    reaches it: once it runs it finds the text differs from the page's and saves it."""
    from patients.models import ClinicalNote

    base = live_server.url
    patient = imported[0]
    page = new_page(browser, base)
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    page.route("**/note-draft*.js", lambda route: route.abort())  # the script "has not arrived"
    page.goto(f"{base}/patients/{patient.pk}/notes/new/")
    page.fill("#id_text", "Typed at once: ankle swelling since the amlodipine.")
    src = page.eval_on_selector("script[src*='note-draft']", "s => s.src")
    page.unroute("**/note-draft*.js")
    page.add_script_tag(url=src)  # ... and now it has
    assert "Draft saved" in _wait_for_status(page, "Draft saved", "Not saved")
    note = ClinicalNote.objects.get(patient=patient, author=clinician)
    assert note.text == "Typed at once: ankle swelling since the amlodipine."
    assert not note.is_signed
