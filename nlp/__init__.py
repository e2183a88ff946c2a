"""TwinPortal's note reader: a spaCy pipeline over clinicians' notes and a source-linked summariser.

Nothing here imports Django. ``analyse`` builds the spaCy pipeline on first use (once per process);
importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Imported eagerly on purpose: the submodule ``nlp.summarise`` would otherwise replace the
# function of the same name on the package the first time it is imported. It loads no model.
from nlp.summarise import PatientSummary, summarise

if TYPE_CHECKING:
    from nlp.types import NoteAnalysis

__all__ = ["PatientSummary", "analyse", "summarise"]


def analyse(text: str, **kwargs: object) -> NoteAnalysis:
    """Analyse one note's text; see :func:`nlp.pipeline.analyse`."""
    from nlp.pipeline import analyse as _analyse

    return _analyse(text, **kwargs)  # type: ignore[arg-type]
