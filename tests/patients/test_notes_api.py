"""The notes REST API: list, read, draft, sign, amend and the summary, scoped to the care team like
every patient endpoint, through the same selectors and services as the notes pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import ClinicalNote, NoteSummary, Patient, TaskStatus

pytestmark = pytest.mark.django_db


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(clinician: Any) -> APIClient:
    return _api(clinician)


def _notes(patient: Patient) -> str:
    return f"/api/v1/patients/{patient.pk}/notes/"


def test_it_writes_a_draft_changes_it_signs_it_and_amends_it_keeping_the_old_version(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    p = imported[0]
    empty = api.post(_notes(p), {"text": "  "}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()
    created = api.post(_notes(p), {"title": "Review", "text": "BP high."}, format="json")
    assert created.status_code == 201
    note = created.json()
    assert (note["status"], note["title"], note["author_name"]) == ("draft", "Review", "Ana Silva")
    url = f"{_notes(p)}{note['id']}/"
    changed = api.patch(url, {"text": "BP 162/94, start amlodipine."}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["text"], changed.json()["title"]) == (
        "BP 162/94, start amlodipine.",
        "Review",
    )
    signed = api.post(f"{url}sign/", format="json")
    assert signed.status_code == 200 and signed.json()["status"] == "signed"
    assert api.post(f"{url}sign/", format="json").status_code == 400  # signed once only
    refused = api.patch(url, {"text": "rewritten"}, format="json")
    assert refused.status_code == 400
    assert ClinicalNote.objects.get(pk=note["id"]).text == "BP 162/94, start amlodipine."

    amended = api.post(f"{url}amend/", {"text": "BP 162/94, start amlodipine 5 mg."}, format="json")
    assert amended.status_code == 201
    new = amended.json()
    assert (new["version"], new["previous_version"], new["status"]) == (2, note["id"], "signed")
    old = api.get(url).json()
    assert (old["text"], old["next_version"]) == ("BP 162/94, start amlodipine.", new["id"])
    assert api.post(f"{url}amend/", {"text": "again"}, format="json").status_code == 400
    listed = api.get(_notes(p)).json()
    assert [n["id"] for n in listed["results"] if n["title"] == "Review"] == [new["id"]]


def test_it_lists_the_current_notes_newest_first_with_only_my_own_drafts(
    care_team: Any, imported: list[Patient], clinician: Any, other_clinician: Any
) -> None:
    p = imported[0]
    care_team.members.add(other_clinician)
    mine, theirs = _api(clinician), _api(other_clinician)
    now = timezone.now()
    older = ClinicalNote.objects.create(
        patient=p,
        author=clinician,
        author_name="Ana Silva",
        written_at=now - dt.timedelta(days=30),
        text="Older.",
        status=ClinicalNote.Status.SIGNED,
        signed_at=now - dt.timedelta(days=30),
    )
    newer = ClinicalNote.objects.create(
        patient=p,
        author=clinician,
        author_name="Ana Silva",
        written_at=now - dt.timedelta(days=1),
        text="Newer.",
        status=ClinicalNote.Status.SIGNED,
        signed_at=now - dt.timedelta(days=1),
    )
    draft = theirs.post(_notes(p), {"text": "Thinking aloud"}, format="json").json()
    ids = [n["id"] for n in mine.get(_notes(p)).json()["results"]]
    assert ids.index(newer.pk) < ids.index(older.pk)
    assert draft["id"] not in ids
    assert draft["id"] in [n["id"] for n in theirs.get(_notes(p)).json()["results"]]
    other_draft = f"{_notes(p)}{draft['id']}/"
    assert mine.get(other_draft).status_code == 404
    assert mine.patch(other_draft, {"text": "mine now"}, format="json").status_code == 404
    assert mine.post(f"{other_draft}sign/").status_code == 404


def test_a_patient_outside_my_care_teams_is_a_404_on_every_notes_endpoint(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    outsider = imported[2]
    note = ClinicalNote.objects.create(
        patient=outsider,
        author_name="Someone else",
        written_at=timezone.now(),
        text="Not yours.",
        status=ClinicalNote.Status.SIGNED,
    )
    NoteSummary.objects.create(patient=outsider, status=TaskStatus.SUCCEEDED, summary={})
    base = _notes(outsider)
    answers = [
        api.get(base),
        api.post(base, {"text": "x"}, format="json"),
        api.get(f"{base}summary/"),
        api.get(f"{base}{note.pk}/"),
        api.patch(f"{base}{note.pk}/", {"text": "x"}, format="json"),
        api.post(f"{base}{note.pk}/sign/"),
        api.post(f"{base}{note.pk}/amend/", {"text": "x"}, format="json"),
        # a note of another patient, asked for under one of mine
        api.get(f"{_notes(imported[0])}{note.pk}/"),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all(a["Content-Type"] == "application/json" for a in answers)
    assert ClinicalNote.objects.filter(patient=outsider).count() == 1


def test_it_serves_the_cross_note_summary_with_its_sources(
    api: APIClient, care_team: Any, imported: list[Patient]
) -> None:
    p = imported[0]
    assert api.get(f"{_notes(p)}summary/").status_code == 404  # none yet
    summary = {"problems": [{"name": "hypertension", "source": {"note_id": 1, "start": 0}}]}
    NoteSummary.objects.create(
        patient=p,
        status=TaskStatus.SUCCEEDED,
        summary=summary,
        note_count=1,
        computed_at=timezone.now(),
    )
    body = api.get(f"{_notes(p)}summary/").json()
    assert (body["status"], body["note_count"], body["summary"]) == ("succeeded", 1, summary)


def test_the_schema_lists_the_notes_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    base = "/api/v1/patients/{patient_id}/notes/"
    expected = {
        base: {"get", "post"},
        f"{base}summary/": {"get"},
        f"{base}{{note_id}}/": {"get", "patch"},
        f"{base}{{note_id}}/sign/": {"post"},
        f"{base}{{note_id}}/amend/": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    assert paths[base]["post"]["responses"]["201"]
    assert "404" in paths[f"{base}{{note_id}}/amend/"]["post"]["responses"]
