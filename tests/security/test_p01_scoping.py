"""Property 1: a clinician not on a patient's care team gets 404 (never 403) on every
patient-scoped page and API, and for every child object fetched by its own id (a note, a twin
snapshot, an alert, a what-if run). The addresses come from the URLconf and the OpenAPI schema,
so a new endpoint is covered without editing this test."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.security.patient_routes import objects_of, request, schema_routes, urlconf_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(care_team, imported, clinician) -> dict[str, dict[str, int]]:
    """One object of every kind for a care-team patient and for a patient outside the team."""
    from twins import services

    member, outsider = imported[0], imported[2]
    services.snapshots_compute(patient_ids=[member.pk, outsider.pk], trigger="test")
    return {"member": objects_of(member, clinician), "outsider": objects_of(outsider, clinician)}


@pytest.fixture
def signed_in(clinician) -> Client:
    client = Client()
    client.force_login(clinician)
    return client


def test_the_walk_finds_every_kind_of_patient_scoped_address() -> None:
    found = {r.template for r in urlconf_routes() + schema_routes()}
    for expected in (
        "patients/<int:patient_id>/",
        "patients/<int:patient_id>/notes/<int:note_id>/amend/",
        "whatif/<int:run_id>/status/",
        "alerts/<int:alert_id>/acknowledge/",
        "/api/v1/patients/{patient_id}/fhir/",
        "/api/v1/patients/{patient_id}/twin/snapshots/{snapshot_id}/",
        "/api/v1/whatif/{run_id}/",
    ):
        assert any(t.endswith(expected) for t in found), expected


@pytest.mark.parametrize("source", ["urlconf", "schema"])
def test_every_patient_scoped_address_is_a_404_outside_the_care_team(
    source, signed_in, objects
) -> None:
    routes = urlconf_routes() if source == "urlconf" else schema_routes()
    assert routes
    for route in routes:
        # the same address with the care team's own objects is found: the 404 is the scoping
        mine = request(signed_in, route, route.fill(objects["member"]))
        assert mine.status_code != 404, route
        theirs = request(signed_in, route, route.fill(objects["outsider"]))
        assert theirs.status_code == 404, (route, theirs.status_code)
        if route.template.lstrip("/").startswith("api/"):
            assert set(theirs.json()) == {"detail"}, route


def test_a_patient_id_tampered_into_a_note_address_is_a_404(signed_in, objects) -> None:
    """A care-team patient's id with another patient's note id finds nothing."""
    from django.urls import reverse

    url = reverse(
        "patients:note", args=[objects["member"]["patient_id"], objects["outsider"]["note_id"]]
    )
    assert signed_in.get(url).status_code == 404
