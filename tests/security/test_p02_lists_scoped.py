"""Property 2: lists, search, counts and cohort views never include or count patients outside the
caller's care teams. The API part walks every list operation of the OpenAPI schema (a GET without
a path parameter), so a new list endpoint is covered without editing this test."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.security.patient_routes import objects_of

pytestmark = pytest.mark.django_db

_PATIENT_KEYS = ("patient", "patient_id")


@pytest.fixture
def cohort(care_team, imported, clinician) -> dict[str, Any]:
    """Three patients with a snapshot, an open alert and a saved what-if; the team has two of them."""
    from twins import services
    from twins.models import WhatIfRun

    services.snapshots_compute(patient_ids=[p.pk for p in imported[:3]], trigger="test")
    for patient in imported[:3]:
        objects_of(patient, clinician)
    WhatIfRun.objects.update(name="Saved plan")
    return {"members": imported[:2], "outsiders": imported[2:]}


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


def list_operations() -> list[str]:
    """Every GET of the OpenAPI schema with no path parameter: the API's lists."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [path for path, item in schema["paths"].items() if "{" not in path and "get" in item]


def patient_ids_in(value: Any, key: str = "") -> set[int]:
    """Every patient id a JSON answer names (``patient``/``patient_id`` anywhere, or a patient's id)."""
    found: set[int] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k in _PATIENT_KEYS and isinstance(v, int):
                found.add(v)
            elif k in _PATIENT_KEYS and isinstance(v, dict) and isinstance(v.get("id"), int):
                found.add(v["id"])
            else:
                found |= patient_ids_in(v, k)
    elif isinstance(value, list):
        for v in value:
            found |= patient_ids_in(v, key)
    return found


def test_every_api_list_shows_and_counts_only_care_team_patients(signed_in, cohort) -> None:
    from twins.models import TwinAlert

    member_ids = {p.pk for p in cohort["members"]}
    operations = list_operations()
    assert "/api/v1/patients/" in operations and "/api/v1/alerts/" in operations
    for path in operations:
        response = signed_in.get(path)
        if response.status_code in (403, 405):  # not a clinician's list (import, devices)
            continue
        assert response.status_code == 200, (path, response.status_code)
        body = response.json()
        text = response.content.decode()
        for outsider in cohort["outsiders"]:
            assert outsider.mrn not in text, path
            assert outsider.family_name not in text, path
        named = patient_ids_in(body)
        if path == "/api/v1/patients/":
            named |= {row["id"] for row in body["results"]}
        assert named <= member_ids, (path, named - member_ids)
        if isinstance(body, dict) and "count" in body:
            assert body["count"] == len(body["results"]) or body["count"] <= len(member_ids) * 50
            if path == "/api/v1/patients/":
                assert body["count"] == len(member_ids)
            if path == "/api/v1/alerts/":
                open_alerts = TwinAlert.objects.filter(
                    patient_id__in=member_ids, acknowledged_at__isnull=True
                )
                assert body["count"] == open_alerts.count()
                assert TwinAlert.objects.exclude(patient_id__in=member_ids).exists()


def test_paging_does_not_reach_past_the_care_team(signed_in, cohort) -> None:
    first = signed_in.get("/api/v1/patients/", {"limit": 1}).json()
    assert first["count"] == 2 and first["next"]
    second = signed_in.get(first["next"]).json()
    assert second["next"] is None
    beyond = signed_in.get("/api/v1/patients/", {"limit": 10, "offset": 2}).json()
    assert beyond["results"] == [] and beyond["count"] == 2


def _linked(html: str) -> set[int]:
    """The patients a page links to (their twin, notes or what-if pages)."""
    return {int(pk) for pk in re.findall(r'href="/patients/(\d+)/', html)}


def test_my_patients_lists_and_counts_only_the_care_team(signed_in, cohort) -> None:
    html = signed_in.get(reverse("patients:list")).content.decode()
    assert _linked(html) == {p.pk for p in cohort["members"]}
    for member in cohort["members"]:
        assert member.mrn in html
    for outsider in cohort["outsiders"]:
        assert outsider.mrn not in html
    assert not re.search(r"\b4 patients\b", html)


@pytest.mark.parametrize("by", ["mrn", "family_name", "given_name"])
def test_search_never_finds_a_patient_outside_the_care_team(signed_in, cohort, by) -> None:
    outsider = cohort["outsiders"][0]
    html = signed_in.post(
        reverse("patients:list"), {"search": getattr(outsider, by)}, follow=True
    ).content.decode()
    assert _linked(html) == set()
    # the search box keeps what was typed; the outsider's record number appears nowhere else
    assert html.count(getattr(outsider, by)) == 1
    if by != "mrn":
        assert outsider.mrn not in html


def test_filters_and_sorts_never_add_an_outsider(signed_in, cohort) -> None:
    from patients import pages

    for sort in pages.SORT_LABELS:
        for alerts_only in ("", "on"):
            html = signed_in.post(
                reverse("patients:list"), {"sort": sort, "alerts_only": alerts_only}, follow=True
            ).content.decode()
            for outsider in cohort["outsiders"]:
                assert outsider.mrn not in html, sort
            assert _linked(html) <= {p.pk for p in cohort["members"]}


def test_the_alerts_page_shows_only_care_team_alerts(signed_in, cohort) -> None:
    from twins.models import TwinAlert

    for query in ({}, {"state": "all"}):
        html = signed_in.get(reverse("patients:alerts"), query).content.decode()
        for alert in TwinAlert.objects.filter(patient__in=cohort["outsiders"]):
            assert f"/alerts/{alert.pk}/" not in html
        for outsider in cohort["outsiders"]:
            assert outsider.mrn not in html
            assert outsider.family_name not in html
        for member in cohort["members"]:
            assert member.mrn in html or member.family_name in html


def test_the_saved_what_if_list_holds_only_that_patients_runs(signed_in, cohort) -> None:
    from twins.models import WhatIfRun

    member = cohort["members"][0]
    html = signed_in.get(reverse("patients:whatif-new", args=[member.pk])).content.decode()
    for run in WhatIfRun.objects.exclude(patient=member):
        assert f"/whatif/{run.pk}/" not in html
    assert f"/whatif/{WhatIfRun.objects.get(patient=member).pk}/" in html


def test_the_selector_every_list_starts_from_is_the_care_team(clinician, cohort) -> None:
    from patients.selectors import patients_visible_to

    visible = set(patients_visible_to(clinician).values_list("pk", flat=True))
    assert visible == {p.pk for p in cohort["members"]}
