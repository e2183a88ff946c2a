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
