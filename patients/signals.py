"""Signals the records send, so apps built on them (the twin) stay current without the records
layer knowing about them."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent inside the transaction that changed clinical rows the twin reads (observations,
#: medications, conditions, demographics), with ``patient_ids`` and a short ``reason``
#: ("import", "admin", "device"). Receivers must only record work (it commits or rolls back with
#: the change) and queue it after commit.
records_changed = Signal()
