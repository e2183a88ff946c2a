"""The clinician's pages: what each shows, care-team scoping, and a query count that does not grow
with the number of patients or readings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def fitted(care_team, imported):
    """The clinician's two patients with a twin snapshot each."""
    from twins import services

    services.snapshots_compute(patient_ids=[p.pk for p in imported[:2]], trigger="test")
    return imported[:2]


@pytest.fixture
def signed_in(client, clinician):
    client.force_login(clinician)
    return client


def test_it_lists_my_patients_with_links_latest_readings_and_risk(signed_in, fitted) -> None:
    response = signed_in.get(reverse("patients:list"))
    assert response.status_code == 200
    html = response.content.decode()
    for p in fitted:
        assert reverse("patients:twin", args=[p.pk]) in html
    assert "mmHg" in html
    assert response["Cache-Control"] == "no-store"


def test_the_search_is_posted_and_kept_out_of_the_url(signed_in, fitted, imported) -> None:
    target = fitted[0]
    response = signed_in.post(
        reverse("patients:list"), {"search": target.family_name, "sort": "name"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:list")
    html = signed_in.get(response["Location"]).content.decode()
    assert target.mrn in html
    assert fitted[1].mrn not in html or fitted[1].family_name == target.family_name
    cleared = signed_in.post(reverse("patients:list"), {"clear": "1"}, follow=True)
    assert fitted[1].mrn in cleared.content.decode()


def test_a_get_with_a_search_in_the_query_string_is_ignored(signed_in, fitted) -> None:
    html = signed_in.get(reverse("patients:list") + "?q=zzz&search=zzz").content.decode()
    assert fitted[0].mrn in html and fitted[1].mrn in html


def test_the_twin_page_shows_header_chart_data_risk_and_trust(signed_in, fitted) -> None:
    p = fitted[0]
    response = signed_in.get(reverse("patients:twin", args=[p.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert p.mrn in html
    assert 'id="twin-chart-data"' in html
    assert '"forecast": {' in html
    assert "How far to trust it" in html
    assert "Carry last value forward" in html or "Not enough history" in html
    assert "<script>" not in html  # no inline scripts under the CSP


def test_a_patient_outside_my_care_teams_is_a_404_on_every_page(
    signed_in, imported, care_team
) -> None:
    outsider = imported[2]
    for name in ("patients:twin", "patients:whatif-new", "patients:notes", "patients:note-new"):
        assert signed_in.get(reverse(name, args=[outsider.pk])).status_code == 404


def test_a_patient_without_a_fit_gets_the_designed_empty_state(
    signed_in, care_team, imported
) -> None:
    html = signed_in.get(reverse("patients:twin", args=[imported[0].pk])).content.decode()
    assert "The twin has not been fitted to this record yet." in html
    assert "no forecast yet" in html


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_page_queries_do_not_grow_with_patients_or_readings(
    signed_in, fitted, imported, care_team
) -> None:
    from patients.models import Observation

    list_url = reverse("patients:list")
    twin_url = reverse("patients:twin", args=[fitted[0].pk])
    before_list, before_twin = _queries(signed_in, list_url), _queries(signed_in, twin_url)
    care_team.patients.add(*imported[2:])
    last = (
        Observation.objects.filter(patient=fitted[0], code="8480-6")
        .order_by("-effective_at")
        .first()
    )
    assert last is not None
    Observation.objects.bulk_create(
        [
            Observation(
                patient=fitted[0],
                code="8480-6",
                value=120 + k,
                unit="mm[Hg]",
                effective_at=last.effective_at - dt.timedelta(days=k + 1, hours=1),
            )
            for k in range(50)
        ]
    )
    assert _queries(signed_in, list_url) == before_list
    assert _queries(signed_in, twin_url) == before_twin


def test_every_page_renders_for_a_fitted_patient(signed_in, fitted, clinician) -> None:
    from patients import page_services
    from twins import services
    from twins.services import PlanItemInput

    p = fitted[0]
    note = page_services.note_draft_save(
        patient=p, author=clinician, text="BP 150/90, start ramipril."
    )
    run = services.whatif_submit(
        user=clinician,
        patient=p,
        plans={"ACE inhibitor": [PlanItemInput("ace_inhibitor", start=dt.date.today())]},
    )
    services.whatif_execute(run_id=run.pk)
    urls = [
        reverse("patients:alerts"),
        reverse("patients:alerts") + "?state=all",
        reverse("patients:whatif-new", args=[p.pk]),
        reverse("patients:whatif", args=[run.pk]),
        reverse("patients:notes", args=[p.pk]),
        reverse("patients:note-new", args=[p.pk]),
        reverse("patients:note-edit", args=[p.pk, note.pk]),
        reverse("patients:note", args=[p.pk, note.pk]) + "?hl=0-9",
    ]
    for url in urls:
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert "<script>" not in response.content.decode()
    html = signed_in.get(reverse("patients:whatif", args=[run.pk])).content.decode()
    assert 'id="outcome-table"' in html
    assert "fewer event" in html or "more event" in html or "no fewer events" in html
    assert "<mark" in signed_in.get(urls[-1]).content.decode()


@pytest.fixture
def sparse_patient(care_team):
    """A patient with two blood-pressure readings and nothing else, on the clinician's team."""
    from django.utils import timezone

    from patients.models import Observation, Patient

    p = Patient.objects.create(
        mrn="SPARSE-1",
        given_name="Ada",
        family_name="Few",
        sex="female",
        birth_date=dt.date(1960, 5, 1),
    )
    care_team.patients.add(p)
    now = timezone.now()
    for k, value in enumerate((142.0, 150.0)):
        Observation.objects.create(
            patient=p,
            code="8480-6",
            value=value,
            unit="mm[Hg]",
            effective_at=now - dt.timedelta(days=60 - 30 * k),
        )
    return p


def test_a_patient_with_two_readings_gets_a_plain_warning(signed_in, sparse_patient) -> None:
    from twins import services

    services.snapshots_compute(patient_ids=[sparse_patient.pk])
    html = signed_in.get(reverse("patients:twin", args=[sparse_patient.pk])).content.decode()
    assert "Too few readings to personalise the twin" in html
    assert "first forecast for this patient" in html


def test_a_patient_without_notes_gets_the_designed_empty_state(signed_in, sparse_patient) -> None:
    html = signed_in.get(reverse("patients:notes", args=[sparse_patient.pk])).content.decode()
    assert "No notes for this patient yet." in html
    assert "No signed notes to summarise." in html


def test_a_stale_twin_says_recomputation_is_delayed(signed_in, fitted) -> None:
    from django.utils import timezone

    from twins.models import TwinState

    TwinState.objects.filter(patient=fitted[0]).update(data_changed_at=timezone.now())
    html = signed_in.get(reverse("patients:twin", args=[fitted[0].pk])).content.decode()
    assert "Recomputation is delayed; showing results from" in html


def test_a_failed_what_if_says_so_and_offers_to_try_again(signed_in, fitted, clinician) -> None:
    from twins import services
    from twins.services import PlanItemInput

    run = services.whatif_submit(
        user=clinician,
        patient=fitted[0],
        plans={"Metformin": [PlanItemInput("metformin", start=dt.date.today())]},
    )
    pending = signed_in.get(reverse("patients:whatif", args=[run.pk])).content.decode()
    assert 'id="whatif-progress"' in pending
    assert signed_in.get(reverse("patients:whatif-status", args=[run.pk])).json()["done"] is False
    services.whatif_fail(run_id=run.pk, error="ValueError: calibration did not converge")
    html = signed_in.get(reverse("patients:whatif", args=[run.pk])).content.decode()
    assert "The comparison could not be computed." in html
    assert reverse("patients:whatif-new", args=[fitted[0].pk]) in html


def test_a_what_if_starting_in_the_past_is_refused(signed_in, fitted) -> None:
    from twins.models import WhatIfRun

    yesterday = dt.date.today() - dt.timedelta(days=1)
    response = signed_in.post(
        reverse("patients:whatif-new", args=[fitted[0].pk]),
        {
            "plan0-name": "ACE",
            "plan0-item0_intervention": "ace_inhibitor",
            "plan0-item0_start": yesterday.isoformat(),
            "plan0-item0_dose": "1",
        },
    )
    assert response.status_code == 200
    assert "The start may not be in the past." in response.content.decode()
    assert not WhatIfRun.objects.exists()


def test_a_what_if_is_submitted_and_saved_under_a_name(signed_in, fitted) -> None:
    from twins.models import WhatIfRun

    today = dt.date.today().isoformat()
    response = signed_in.post(
        reverse("patients:whatif-new", args=[fitted[0].pk]),
        {
            "plan0-name": "ACE",
            "plan0-item0_intervention": "ace_inhibitor",
            "plan0-item0_start": today,
            "plan0-item0_dose": "1",
            "plan1-name": "Statin",
            "plan1-item0_intervention": "statin",
            "plan1-item0_intensity": "high",
            "plan1-item0_start": today,
        },
    )
    run = WhatIfRun.objects.get()
    assert response["Location"] == reverse("patients:whatif", args=[run.pk])
    assert set(run.plans) == {"ACE", "Statin"}
    assert run.plans["Statin"][0]["intensity"] == "high"
    signed_in.post(reverse("patients:whatif-name", args=[run.pk]), {"name": "BP or lipids"})
    html = signed_in.get(reverse("patients:whatif-new", args=[fitted[0].pk])).content.decode()
    assert "BP or lipids" in html


def test_a_what_if_offers_to_stop_only_the_drug_classes_taken_now(signed_in, fitted) -> None:
    html = signed_in.get(reverse("patients:whatif-new", args=[fitted[0].pk])).content.decode()
    assert '<optgroup label="Stop a drug taken now">' in html
    assert '<option value="stop:thiazide">Stop thiazide diuretic</option>' in html
    assert 'value="stop:statin"' not in html  # not taken by this patient


def test_a_plan_stopping_a_drug_is_compared_side_by_side_with_its_source(signed_in, fitted) -> None:
    from models_engine.treatments import STOP_SOURCE
    from twins import services
    from twins.models import WhatIfRun

    today = dt.date.today()
    response = signed_in.post(
        reverse("patients:whatif-new", args=[fitted[0].pk]),
        {
            "plan0-name": "Add ARB",
            "plan0-item0_intervention": "arb",
            "plan0-item0_start": today.isoformat(),
            "plan1-name": "Stop the thiazide",
            "plan1-item0_intervention": "stop:thiazide",
            "plan1-item0_start": (today + dt.timedelta(days=30)).isoformat(),
            "plan1-item0_dose": "1",
        },
    )
    run = WhatIfRun.objects.get()
    assert response["Location"] == reverse("patients:whatif", args=[run.pk])
    assert run.plans["Stop the thiazide"] == [
        {
            "intervention": "thiazide",
            "dose": 1.0,
            "start": (today + dt.timedelta(days=30)).isoformat(),
            "stop": None,
            "intensity": None,
            "action": "stop",
        }
    ]
    services.whatif_execute(run_id=run.pk)
    html = signed_in.get(reverse("patients:whatif", args=[run.pk])).content.decode()
    assert "Stop thiazide diuretic from" in html
    assert "Thiazide diuretic: stopped (1× standard dose)" in html
    assert STOP_SOURCE in html
    assert html.index("Add ARB") < html.index("Stop the thiazide")  # side by side, by name


def test_a_stopped_drug_with_a_stop_date_is_refused(signed_in, fitted) -> None:
    from twins.models import WhatIfRun

    today = dt.date.today()
    response = signed_in.post(
        reverse("patients:whatif-new", args=[fitted[0].pk]),
        {
            "plan0-name": "Stop",
            "plan0-item0_intervention": "stop:thiazide",
            "plan0-item0_start": today.isoformat(),
            "plan0-item0_stop": (today + dt.timedelta(days=9)).isoformat(),
        },
    )
    assert "A drug that is stopped has no stop date." in response.content.decode()
    assert not WhatIfRun.objects.exists()


def test_an_alert_is_acknowledged_only_with_a_reason(signed_in, fitted) -> None:
    from twins.models import TwinAlert

    alert = TwinAlert.objects.filter(patient__in=fitted).first()
    assert alert is not None, "the fixture patients raise a risk alert"
    url = reverse("patients:alert-acknowledge", args=[alert.pk])
    signed_in.post(url, {"reason": "  "})
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    signed_in.post(url, {"reason": "Discussed at review; statin offered"})
    alert.refresh_from_db()
    assert alert.acknowledged_reason == "Discussed at review; statin offered"
    assert "No open alerts" in signed_in.get(reverse("patients:alerts")).content.decode() or (
        alert.message not in signed_in.get(reverse("patients:alerts")).content.decode()
    )


def test_another_teams_alert_cannot_be_acknowledged(client, other_clinician, fitted) -> None:
    from twins.models import TwinAlert

    alert = TwinAlert.objects.filter(patient__in=fitted).first()
    assert alert is not None
    client.force_login(other_clinician)
    url = reverse("patients:alert-acknowledge", args=[alert.pk])
    assert client.post(url, {"reason": "not mine"}).status_code == 404


def test_a_note_is_drafted_autosaved_signed_and_amended(signed_in, fitted, clinician) -> None:
    from patients.models import ClinicalNote

    p = fitted[0]
    saved = signed_in.post(
        reverse("patients:note-new", args=[p.pk]),
        {"title": "Review", "text": "BP high."},
        HTTP_X_AUTOSAVE="1",
    ).json()
    note = ClinicalNote.objects.get(pk=saved["note_id"])
    assert note.status == ClinicalNote.Status.DRAFT and note.author == clinician
    edit = reverse("patients:note-edit", args=[p.pk, note.pk])
    signed_in.post(
        edit, {"title": "Review", "text": "BP high; start ramipril."}, HTTP_X_AUTOSAVE="1"
    )
    note.refresh_from_db()
    assert note.text == "BP high; start ramipril."
    assert ClinicalNote.objects.filter(patient=p, author=clinician).count() == 1
    signed_in.post(edit, {"title": "Review", "text": note.text, "sign": "1"})
    note.refresh_from_db()
    assert note.is_signed
    signed_in.post(
        reverse("patients:note-amend", args=[p.pk, note.pk]),
        {"title": "Review", "text": "BP high; start ramipril 2.5 mg."},
    )
    amendment = ClinicalNote.objects.get(previous_version=note)
    assert amendment.version == 2 and amendment.is_signed
    html = signed_in.get(reverse("patients:note", args=[p.pk, amendment.pk])).content.decode()
    assert "Version 1" in html


def test_another_clinicians_draft_is_not_shown_or_editable(
    client, fitted, clinician, other_clinician, care_team
) -> None:
    from patients import page_services

    care_team.members.add(other_clinician)
    draft = page_services.note_draft_save(
        patient=fitted[0], author=clinician, text="Thinking aloud"
    )
    client.force_login(other_clinician)
    assert (
        "Thinking aloud"
        not in client.get(reverse("patients:notes", args=[fitted[0].pk])).content.decode()
    )
    assert (
        client.get(reverse("patients:note-edit", args=[fitted[0].pk, draft.pk])).status_code == 404
    )


def test_the_list_marks_a_summary_changed_since_i_last_looked(signed_in, fitted) -> None:
    from django.utils import timezone

    from patients.models import NoteSummary, TaskStatus

    p = fitted[0]
    NoteSummary.objects.create(
        patient=p, status=TaskStatus.SUCCEEDED, summary={"problems": []}, computed_at=timezone.now()
    )
    assert "Summary changed" in signed_in.get(reverse("patients:list")).content.decode()
    signed_in.get(reverse("patients:notes", args=[p.pk]))
    assert "Summary changed" not in signed_in.get(reverse("patients:list")).content.decode()
    NoteSummary.objects.filter(patient=p).update(
        computed_at=timezone.now() + dt.timedelta(seconds=1)
    )
    assert "Summary changed" in signed_in.get(reverse("patients:list")).content.decode()


def test_what_a_clinician_has_seen_is_kept_in_the_database_for_that_clinician_only(
    client, signed_in, fitted, clinician, other_clinician, care_team
) -> None:
    from django.core.cache import cache
    from django.utils import timezone

    from patients.models import NoteSummary, NoteSummaryView, TaskStatus

    p = fitted[0]
    care_team.members.add(other_clinician)
    computed = timezone.now()
    NoteSummary.objects.create(
        patient=p, status=TaskStatus.SUCCEEDED, summary={"problems": []}, computed_at=computed
    )
    signed_in.get(reverse("patients:notes", args=[p.pk]))
    signed_in.get(reverse("patients:notes", args=[p.pk]))
    view = NoteSummaryView.objects.get(patient=p)
    assert (view.user_id, view.seen_computed_at) == (clinician.pk, computed)
    cache.clear()  # the mark survives a cache flush or restart
    assert "Summary changed" not in signed_in.get(reverse("patients:list")).content.decode()
    client.force_login(other_clinician)
    assert "Summary changed" in client.get(reverse("patients:list")).content.decode()


def test_opening_the_notes_before_any_summary_records_nothing(signed_in, fitted) -> None:
    from patients.models import NoteSummaryView

    signed_in.get(reverse("patients:notes", args=[fitted[0].pk]))
    assert not NoteSummaryView.objects.exists()


def test_the_list_filters_by_alerts_and_sorts_by_risk(signed_in, fitted) -> None:
    from twins.models import TwinAlert

    signed_in.post(reverse("patients:list"), {"alerts_only": "on", "sort": "risk"})
    html = signed_in.get(reverse("patients:list")).content.decode()
    with_alerts = set(
        TwinAlert.objects.filter(acknowledged_at__isnull=True).values_list(
            "patient__mrn", flat=True
        )
    )
    for p in fitted:
        assert (p.mrn in html) == (p.mrn in with_alerts)


def test_alerts_and_notes_pages_queries_do_not_grow_with_rows(
    signed_in, fitted, clinician, care_team, imported
) -> None:
    from django.utils import timezone

    from patients.models import ClinicalNote
    from twins.models import TwinAlert, TwinState

    p = fitted[0]
    snapshot = TwinState.objects.get(patient=p).latest

    def add(k: int) -> None:
        for i in range(k):
            TwinAlert.objects.create(
                patient=p,
                kind=TwinAlert.Kind.DRIFT,
                dedupe_key=f"q-{i}-{timezone.now().timestamp()}",
                snapshot=snapshot,
                variable="sbp",
                message=f"Reading {i} outside the forecast",
                evidence={},
                created_at=timezone.now(),
            )
            ClinicalNote.objects.create(
                patient=p,
                author_name="Someone",
                written_at=timezone.now(),
                text=f"Note {i}",
                status=ClinicalNote.Status.SIGNED,
                signed_at=timezone.now(),
            )

    add(2)
    urls = [reverse("patients:alerts"), reverse("patients:notes", args=[p.pk])]
    before = [_queries(signed_in, u) for u in urls]
    add(20)
    assert [_queries(signed_in, u) for u in urls] == before


def test_the_list_filters_by_last_reading(signed_in, fitted, sparse_patient) -> None:
    signed_in.post(reverse("patients:list"), {"reading": "recent", "sort": "last_reading"})
    html = signed_in.get(reverse("patients:list")).content.decode()
    assert sparse_patient.mrn in html
    assert all(p.mrn not in html for p in fitted)  # the Synthea records end years ago
    signed_in.post(reverse("patients:list"), {"reading": "overdue", "sort": "last_reading"})
    html = signed_in.get(reverse("patients:list")).content.decode()
    assert sparse_patient.mrn not in html
    assert all(p.mrn in html for p in fitted)


@pytest.mark.parametrize(
    ("value", "places"),
    [(127.5, 0), (126.5, 0), (82.49, 0), (6.45, 1), (6.05, 1), (-0.5, 0), (0.0, 0), (48.5, 0)],
)
def test_list_numbers_are_written_as_floatformat_writes_them(value, places) -> None:
    from django.template.defaultfilters import floatformat

    from patients.pages import fixed

    assert fixed(value, places) == floatformat(value, places)


def test_list_days_are_written_as_the_date_filter_writes_them(settings) -> None:
    from django.template.defaultfilters import date
    from django.utils import timezone

    from patients.pages import day_text

    # 23:30 UTC is already the next day in the site's zone
    settings.TIME_ZONE = "Europe/Berlin"
    for month in range(1, 13):
        at = dt.datetime(2026, month, 28, 23, 30, tzinfo=dt.UTC)
        assert day_text(at) == date(timezone.localtime(at), "j M Y")
    assert day_text(None) == ""


def test_the_trust_table_compares_the_errors_it_shows() -> None:
    from patients.pages import _backtest_rows

    rows = {
        r.variable: r
        for r in _backtest_rows(
            {
                "hba1c": {"n": 2, "mae_twin": 0.262, "mae_locf": 0.251},
                "sbp": {"n": 3, "mae_twin": 3.34, "mae_locf": 3.31},
                "weight": {"n": 3, "mae_twin": 1.204, "mae_locf": 1.31},
                "ldl": {"n": 1, "mae_twin": None, "mae_locf": 9.0},
            }
        )
    }
    # an HbA1c error is shown to the hundredth, so 0.26 against 0.25 is visibly worse
    assert (rows["hba1c"].twin_text, rows["hba1c"].locf_text) == ("0.26", "0.25")
    assert rows["hba1c"].verdict == "worse"
    # a difference the page does not show is "same", not "worse"
    assert (rows["sbp"].twin_text, rows["sbp"].locf_text, rows["sbp"].verdict) == (
        "3.3",
        "3.3",
        "same",
    )
    assert (rows["weight"].twin_text, rows["weight"].verdict) == ("1.20", "better")
    assert (rows["ldl"].twin_text, rows["ldl"].verdict) == ("—", "")
