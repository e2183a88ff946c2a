"""Before the idle timeout the page says so in place (no pop-up) and can keep the session; after it,
the page says the session ended (SECURITY.md, sessions, property 9)."""

from __future__ import annotations

import pytest

from tests.browser.pages import csp_violations, new_page
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_idle_timeout_is_announced_and_can_be_put_off(
    browser, live_server, settings, clinician, care_team
) -> None:
    settings.SESSION_COOKIE_AGE = 8  # the warning comes at half of it for so short a session
    base = live_server.url
    page = new_page(browser, base)
    page.on("dialog", lambda d: pytest.fail(f"unexpected dialog: {d.message}"))
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    warning = page.locator("#session-warning")
    warning.get_by_role("button", name="Stay signed in").wait_for(timeout=10_000)
    assert "Your session ends at" in warning.inner_text()
    warning.get_by_role("button", name="Stay signed in").click()
    page.wait_for_selector("#session-warning", state="hidden")
    warning.get_by_role("link", name="Sign in again").wait_for(timeout=15_000)
    assert "Your session has ended" in warning.inner_text()
    page.reload()
    assert "/accounts/login/" in page.url
    assert csp_violations(page) == []
