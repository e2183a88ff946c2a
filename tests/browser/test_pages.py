"""A clinician's session through the pages in Debian's Chromium: the list, the twin page with its
charts, an alert acknowledged, a what-if comparison run by a real worker, a note written and
signed and the summary changing. Every page is checked for CSP violations and with axe-core, and
photographed at 1366x768."""

from __future__ import annotations

import time

import pytest

from tests.browser.pages import check_page, csp_violations, new_page, shot
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinic(care_team, imported):
    """Two fitted patients, an open drift alert on the first."""
    from django.utils import timezone

    from patients.models import Observation
    from twins import services
    from twins.models import TwinAlert, TwinState

    services.snapshots_compute(patient_ids=[p.pk for p in imported[:2]], trigger="test")
    p = imported[0]
    state = TwinState.objects.get(patient=p)
    obs = Observation.objects.filter(patient=p, code="8480-6").order_by("-effective_at").first()
    TwinAlert.objects.create(
        patient=p,
        kind=TwinAlert.Kind.DRIFT,
        dedupe_key=f"test-drift-{p.pk}",
        snapshot=state.latest,
        observation=obs,
        variable="sbp",
        message="Systolic BP 168 mmHg is above the forecast's 95 % band (112–151 mmHg)",
        evidence={"value": 168, "lo95": 112, "hi95": 151},
        created_at=timezone.now(),
    )
    return imported[:2]


def _trace_names(page) -> list[str]:
    return page.evaluate("document.getElementById('twin-chart').data.map(t => t.name)")


def test_a_clinician_works_through_the_pages(
    browser, live_server, clinician, clinic, celery_worker
) -> None:
    base = live_server.url
    page = new_page(browser, base)
    page.goto(f"{base}/accounts/login/")
    check_page(page, base, "sign-in")
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    assert page.locator("#patient-list tbody tr").count() == 2
    check_page(page, base, "my-patients")

    # The search is posted: the address stays bare.
    first = clinic[0]
    page.fill("#id_search", first.family_name)
    page.click("text=Apply")
    page.wait_for_selector("#patient-list")
    assert page.url.rstrip("/") == base
    assert first.mrn in page.locator("#patient-list").inner_text()
    page.click("button[name=clear]")
    page.wait_for_selector("#patient-list")
    assert page.locator("#patient-list tbody tr").count() == 2

    # The twin page: charts rendered with the expected traces.
    page.click(f"#patient-list a:has-text('{first.family_name}, {first.given_name}')")
    page.wait_for_selector("#twin-chart[data-rendered='1']")
    names = _trace_names(page)
    for expected in (
        "Systolic BP observed",
        "Systolic BP forecast",
        "Systolic BP 80 % band",
        "Systolic BP 95 % band",
    ):
        assert expected in names, names
    assert page.locator("#twin-chart .main-svg").count() >= 1
    assert page.locator("#risk-panel").is_visible()
    assert page.locator("#trust-panel").is_visible()
    check_page(page, base, "twin")
    page.locator("#risk-panel").scroll_into_view_if_needed()
    shot(page, "twin-risk-trust")

    # Alerts: acknowledge with a reason, no pop-up.
    page.click("nav.topnav >> text=Alerts")
    page.wait_for_selector("#alert-list")
    before = page.locator("#alert-list tbody tr").count()
    assert before >= 1
    check_page(page, base, "alerts")
    page.on("dialog", lambda d: pytest.fail(f"unexpected dialog: {d.message}"))
    page.locator("#alert-list input[name=reason]").first.fill(
        "Repeat reading normal; white-coat effect"
    )
    page.locator("#alert-list button:has-text('Acknowledge')").first.click()
    page.wait_for_selector(".message.success")
    after = page.locator("#alert-list tbody tr").count()
    assert after == before - 1 or "No open alerts" in page.locator("#alert-list").inner_text()

    # What-if: three plans run by the worker, compared side by side; one stops the thiazide the
    # patient takes.
    page.goto(f"{base}/patients/{first.pk}/whatif/")
    page.wait_for_selector("#whatif-form")
    check_page(page, base, "whatif-form")
    page.fill("#id_plan0-name", "ACE inhibitor")
    page.select_option("#id_plan0-item0_intervention", "ace_inhibitor")
    page.fill("#id_plan1-name", "High-intensity statin")
    page.select_option("#id_plan1-item0_intervention", "statin")
    page.select_option("#id_plan1-item0_intensity", "high")
    page.fill("#id_plan2-name", "Stop the thiazide")
    page.select_option("#id_plan2-item0_intervention", "stop:thiazide")
    page.fill("#id_name", "BP or lipids first")
    page.click("text=Run comparison")
    page.wait_for_selector("#outcome-table", timeout=120_000)
    page.wait_for_selector("#whatif-chart[data-rendered='1']")
    rows = page.locator("#outcome-table tbody tr")
    assert rows.count() == 4
    assert "Current care" in rows.nth(0).inner_text()
    stopped = page.locator("#outcome-table tbody tr:has-text('Stop the thiazide')")
    assert "Stop thiazide diuretic from" in stopped.inner_text()
    assert page.evaluate(
        "JSON.parse(document.getElementById('whatif-chart-data').textContent)"
        ".series['Stop the thiazide'] !== undefined"
    )
    assert page.locator("#outcome-table .source[title*='Law']").count() >= 1
    check_page(page, base, "whatif-result")
    page.locator("#whatif-chart").scroll_into_view_if_needed()
    shot(page, "whatif-chart")

    # Notes: write (autosaved), sign, see the summary change and follow an item to its sentence.
    page.goto(f"{base}/patients/{first.pk}/notes/")
    check_page(page, base, "notes")
    page.click("text=Write a note")
    page.fill("#id_title", "Diabetes review")
    page.fill(
        "#id_text",
        "Assessment: type 2 diabetes, HbA1c above target.\nPlan: start metformin 500 mg twice daily. "
        "Recheck HbA1c in 3 months.",
    )
    status = page.locator("#autosave-status")
    deadline = time.monotonic() + 60
    while not any(s in status.inner_text() for s in ("Draft saved", "Not saved")):
        assert time.monotonic() < deadline, status.inner_text()
        time.sleep(0.3)
    assert "Draft saved" in status.inner_text()
    assert "/edit/" in page.url
    check_page(page, base, "note-write")
    page.click("button[name=sign]")
    page.wait_for_selector(".message.success")
    deadline = time.monotonic() + 300  # reading notes loads spaCy once
    while "metformin" not in page.locator("#note-summary").inner_text().lower():
        assert time.monotonic() < deadline, page.locator("#note-summary").inner_text()
        time.sleep(1.5)
        page.reload()
    check_page(page, base, "notes-summary")
    page.click("#note-summary a:has-text('metformin')")
    page.wait_for_selector("mark#hl")
    assert "metformin" in page.locator("mark#hl").inner_text().lower()
    check_page(page, base, "note-highlight")
    page.click("text=Amend this note")
    page.wait_for_selector("#note-form")
    check_page(page, base, "note-amend")
    assert csp_violations(page) == []
