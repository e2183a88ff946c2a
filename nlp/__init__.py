"""TwinPortal's note reader: a spaCy pipeline over clinicians' notes and a source-linked summariser.

Nothing here imports Django. ``analyse`` and ``summarise`` are imported lazily so that importing
the package does not build the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlp.summarise import PatientSummary
    from nlp.types import NoteAnalysis, NoteInput

__all__ = ["analyse", "summarise"]


def analyse(text: str) -> NoteAnalysis:
    """Analyse one note's text; see :func:`nlp.pipeline.analyse`."""
    from nlp.pipeline import analyse as _analyse

    return _analyse(text)


def summarise(notes: list[NoteInput] | list[dict[str, Any]], **kwargs: Any) -> PatientSummary:
    """Summarise all of one patient's notes; see :func:`nlp.summarise.summarise`."""
    from nlp.summarise import summarise as _summarise

    return _summarise(notes, **kwargs)
