from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class TwinsConfig(AppConfig):
    name = "twins"
    verbose_name = "Twin results"

    def ready(self) -> None:
        from patients.signals import records_changed

        records_changed.connect(_recalibrate_on_change, dispatch_uid="twins-recalibrate")


def _recalibrate_on_change(
    sender: Any, *, patient_ids: list[int], reason: str, **kwargs: Any
) -> None:
    from twins.services import twin_recalibration_request

    twin_recalibration_request(patient_ids=patient_ids, reason=reason)
