"""The naive twin page for ``bench.pages_load``: a DRF ``ModelSerializer`` of the patient with every
reading nested, and the twin fitted in the request. Served by gunicorn through :data:`application`
(the project's URLs plus ``/naive/<id>/``); never part of the application itself."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinportal.settings.production")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
settings.ROOT_URLCONF = "bench.pages_naive"

from django.urls import path  # noqa: E402
from rest_framework import serializers  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from models_engine.snapshot import snapshot_batch  # noqa: E402
from patients.models import Observation, Patient  # noqa: E402
from patients.selectors import patients_visible_to  # noqa: E402
from twinportal.urls import urlpatterns as project_urls  # noqa: E402
from twins import selectors  # noqa: E402


class ObservationSerializer(serializers.ModelSerializer[Observation]):
    class Meta:
        model = Observation
        fields = "__all__"


class PatientSerializer(serializers.ModelSerializer[Patient]):
    observations = ObservationSerializer(many=True)

    class Meta:
        model = Patient
        fields = "__all__"


class NaiveTwinPage(APIView):
    def get(self, request: Request, patient_id: int) -> Response:
        patient = (
            patients_visible_to(request.user)  # type: ignore[arg-type]
            .prefetch_related("observations")
            .get(pk=patient_id)
        )
        history = selectors.twin_inputs_for([patient.pk], reference=dt.datetime.now(dt.UTC))[
            0
        ].history
        snap = snapshot_batch([history], with_backtest=[True])[0]
        body: dict[str, Any] = dict(PatientSerializer(patient).data)
        body["risk"] = snap.risk.to_dict() if snap.risk else None
        return Response(body)


urlpatterns = [*project_urls, path("naive/<int:patient_id>/", NaiveTwinPage.as_view())]
