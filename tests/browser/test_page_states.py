"""The designed empty and error states in the browser, each checked for CSP violations and with
axe-core and photographed: a patient with two readings and no notes, a twin whose recomputation is
delayed, a what-if that failed, a comparison's print view, and an empty list."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.pages import check_page, new_page
from tests.browser.test_sign_in import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def states(care_team, imported, clinician):
    from django.utils import timezone

    from patients.models import Observation, Patient
    from twins import services
    from twins.models import TwinState
    from twins.services import PlanItemInput

    now = timezone.now()
    sparse = Patient.objects.create(
        mrn="SPARSE-1",
        given_name="Ada",
        family_name="Few",
        sex="female",
        birth_date=dt.date(1960, 5, 1),
    )
    care_team.patients.add(sparse)
    for k, value in enumerate((142.0, 150.0)):
        Observation.objects.create(
            patient=sparse,
            code="8480-6",
            value=value,
            unit="mm[Hg]",
            effective_at=now - dt.timedelta(days=60 - 30 * k),
        )
    services.snapshots_compute(patient_ids=[sparse.pk, imported[0].pk, imported[1].pk])
    later = timezone.now() + dt.timedelta(seconds=1)  # the record changed after the fit
    TwinState.objects.filter(patient=imported[1]).update(
        data_changed_at=later, failed_at=later, last_error="the worker is not answering"
    )
    failed = services.whatif_submit(
        user=clinician,
        patient=imported[0],
        plans={"Metformin": [PlanItemInput("metformin", start=now.date())]},
    )
    services.whatif_fail(run_id=failed.pk, error="ValueError: calibration did not converge")
    done = services.whatif_submit(
        user=clinician,
        patient=imported[0],
        plans={
            "ACE inhibitor": [PlanItemInput("ace_inhibitor", start=now.date())],
            "Lose 5 kg": [PlanItemInput("weight_loss_5kg", start=now.date())],
        },
        name="Tablets or weight",
    )
    services.whatif_execute(run_id=done.pk)
    return {"sparse": sparse, "stale": imported[1], "failed": failed, "done": done}


def test_the_designed_states_render_cleanly(browser, live_server, states) -> None:
    base = live_server.url
    page = new_page(browser, base)
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")

    page.goto(f"{base}/patients/{states['sparse'].pk}/")
    page.wait_for_selector("#twin-chart[data-rendered='1']")
    assert "Too few readings to personalise the twin" in page.locator("#twin-status").inner_text()
    check_page(page, base, "state-twin-two-readings")

    page.goto(f"{base}/patients/{states['sparse'].pk}/notes/")
    assert "No notes for this patient yet." in page.inner_text("main")
    check_page(page, base, "state-notes-empty")

    page.goto(f"{base}/patients/{states['stale'].pk}/")
    page.wait_for_selector("#twin-chart[data-rendered='1']")
    assert (
        "Recomputation is delayed; showing results from"
        in page.locator("#twin-status").inner_text()
    )
    check_page(page, base, "state-twin-stale")

    page.goto(f"{base}/whatif/{states['failed'].pk}/")
    assert "could not be computed" in page.locator("#whatif-failed").inner_text()
    check_page(page, base, "state-whatif-failed")

    page.goto(f"{base}/whatif/{states['done'].pk}/?print=1")
    page.wait_for_selector("#whatif-chart[data-rendered='1']")
    assert page.locator(".topbar").is_hidden()
    check_page(page, base, "whatif-print")

    page.goto(f"{base}/alerts/?state=all")
    check_page(page, base, "alerts-all")

    page.goto(f"{base}/")
    page.fill("#id_search", "nobody-by-this-name")
    page.click("text=Apply")
    page.wait_for_selector("#patient-list td.empty")
    check_page(page, base, "state-list-no-match")


def test_the_list_and_twin_page_fit_a_tablet(browser, live_server, states) -> None:
    from tests.browser.pages import shot

    base = live_server.url
    page = new_page(browser, base)
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, base, "ana.gp", "a-long-test-password")
    page.wait_for_selector("#patient-list")
    shot(page, "tablet-patient-list")
    wide = page.evaluate(
        "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 768 && !e.closest('.table-wrap')).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 768, wide
    page.goto(f"{base}/patients/{states['stale'].pk}/")
    page.wait_for_selector("#twin-chart[data-rendered='1']")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    shot(page, "tablet-twin", full_page=True)
