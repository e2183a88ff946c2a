"""Signed notes never change; an amendment is a new version that keeps the old one."""

from __future__ import annotations

import datetime as dt

import pytest

from patients import services
from patients.models import ClinicalNote, Patient, SignedNoteError
from patients.selectors import notes_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient() -> Patient:
    return Patient.objects.create(
        mrn="TP0000001",
        given_name="Ada",
        family_name="Byron",
        sex="female",
        birth_date=dt.date(1960, 1, 1),
    )


@pytest.fixture
def draft(patient: Patient, clinician) -> ClinicalNote:
    return ClinicalNote.objects.create(
        patient=patient,
        author=clinician,
        author_name="Ana Silva",
        author_role="general practitioner",
        written_at=dt.datetime(2026, 5, 3, 10, tzinfo=dt.UTC),
        text="BP 150/95. Start amlodipine 5 mg daily.",
    )


def test_a_draft_can_be_edited_but_a_signed_note_cannot(draft: ClinicalNote) -> None:
    draft.text += " Review in 4 weeks."
    draft.save()
    services.note_sign(note=draft)
    draft.refresh_from_db()
    draft.text = "Something else entirely."
    with pytest.raises(SignedNoteError, match="is signed and cannot be changed"):
        draft.save()
    assert ClinicalNote.objects.get(pk=draft.pk).text.endswith("Review in 4 weeks.")


def test_an_amendment_is_a_new_version_and_the_original_is_kept(
    draft: ClinicalNote, clinician
) -> None:
    services.note_sign(note=draft)
    amendment = services.note_amend(
        note=draft, text="BP 150/95. Start amlodipine 10 mg daily.", author=clinician
    )
    assert (amendment.version, amendment.previous_version_id) == (2, draft.pk)
    assert ClinicalNote.objects.get(pk=draft.pk).text == "BP 150/95. Start amlodipine 5 mg daily."
    assert list(notes_for(patient=draft.patient)) == [amendment]
    with pytest.raises(ValueError, match="already been amended"):
        services.note_amend(note=draft, text="again", author=clinician)


def test_a_draft_is_not_amended(draft: ClinicalNote, clinician) -> None:
    with pytest.raises(ValueError, match="is a draft"):
        services.note_amend(note=draft, text="x", author=clinician)
