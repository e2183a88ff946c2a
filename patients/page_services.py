"""Writes the clinician's pages need beyond the record and twin services: note drafts and naming
a what-if comparison. Keyword-only, one action each, like ``patients.services``."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from patients.models import ClinicalNote, NoteSummaryView, Patient
from twins.models import WhatIfRun


def note_draft_save(
    *,
    patient: Patient,
    author: User,
    text: str,
    title: str = "",
    draft: ClinicalNote | None = None,
    now: dt.datetime | None = None,
) -> ClinicalNote:
    """Create or update the author's draft (a signed note is never a draft, so never changed)."""
    now = now or timezone.now()
    if draft is not None:
        if draft.is_signed or draft.author_id != author.pk or draft.patient_id != patient.pk:
            raise ValueError("only the author's own unsigned draft of this patient can be saved")
        draft.text = text
        draft.title = title[:255]
        draft.written_at = now
        draft.save(update_fields=["text", "title", "written_at"])
        return draft
    with transaction.atomic():
        return ClinicalNote.objects.create(
            patient=patient,
            author=author,
            author_name=author.get_full_name() or author.get_username(),
            author_role=author.professional_role or "",
            author_reference=f"twinportal-user-{author.pk}",
            written_at=now,
            note_type="Progress note",
            title=title[:255],
            text=text,
            status=ClinicalNote.Status.DRAFT,
        )


def note_summary_view_record(
    *,
    user: User,
    patient: Patient,
    computed_at: dt.datetime | None,
    now: dt.datetime | None = None,
) -> NoteSummaryView | None:
    """Record that ``user`` has seen the notes summary computed at ``computed_at`` (nothing to
    record while the patient has no summary)."""
    if computed_at is None:
        return None
    view, _ = NoteSummaryView.objects.update_or_create(
        user=user,
        patient=patient,
        defaults={"seen_computed_at": computed_at, "viewed_at": now or timezone.now()},
    )
    return view


def whatif_name_set(*, run: WhatIfRun, name: str) -> WhatIfRun:
    """Save a comparison under a name the patient's care team sees."""
    name = name.strip()[:120]
    if not name:
        raise ValueError("name: give the comparison a name")
    run.name = name
    run.save(update_fields=["name"])
    return run
