"""REST API of the twin's results: the latest snapshot and its history, alerts, what-if runs.

Thin classes: parse, call one selector or service, serialise. A patient outside the caller's care
teams is a 404, as everywhere.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import recorder
from patients.api.views import COMMON_ERRORS, NOT_FOUND, ErrorOutput, _page, _patient_or_404, _user
from patients.models import Patient
from twins import selectors, services
from twins.models import TwinAlert, TwinSnapshot, WhatIfRun


class TwinStatusOutput(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=["current", "stale", "none", "failed"])
    stale_since = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField()
    last_error = serializers.CharField(allow_blank=True)
    recalibration_pending = serializers.BooleanField()


class BandsOutput(serializers.Serializer[Any]):
    unit = serializers.CharField()
    median = serializers.ListField(child=serializers.FloatField())
    lo80 = serializers.ListField(child=serializers.FloatField())
    hi80 = serializers.ListField(child=serializers.FloatField())
    lo95 = serializers.ListField(child=serializers.FloatField())
    hi95 = serializers.ListField(child=serializers.FloatField())


class SnapshotOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    reference_at = serializers.DateTimeField(help_text="t = 0 of the forecast")
    data_until = serializers.DateTimeField(allow_null=True)
    model_version = serializers.CharField()
    inputs_sha256 = serializers.CharField()
    task_id = serializers.CharField(allow_blank=True)
    trigger = serializers.CharField(allow_blank=True)
    fallback = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())
    t_years = serializers.ListField(child=serializers.FloatField())
    variables = serializers.DictField(child=BandsOutput())
    risk = serializers.JSONField(allow_null=True)
    backtest = serializers.JSONField()
    calibration = serializers.JSONField()


class SnapshotSummaryOutput(serializers.ModelSerializer[TwinSnapshot]):
    class Meta:
        model = TwinSnapshot
        fields = [
            "id",
            "computed_at",
            "reference_at",
            "data_until",
            "model_version",
            "trigger",
            "fallback",
            "risk",
        ]


def _snapshot_or_404(request: Request, patient_id: int, snapshot_id: int) -> TwinSnapshot:
    try:
        return selectors.snapshot_get(
            user=_user(request), patient_id=patient_id, snapshot_id=snapshot_id
        )
    except (Patient.DoesNotExist, TwinSnapshot.DoesNotExist) as exc:
        raise Http404("No such snapshot.") from exc


class TwinLatestOutput(serializers.Serializer[Any]):
    status = TwinStatusOutput()
    snapshot = SnapshotOutput(allow_null=True)


class TwinLatestApi(APIView):
    @extend_schema(
        operation_id="patient_twin_retrieve",
        responses={200: TwinLatestOutput, 404: NOT_FOUND, **COMMON_ERRORS},
        summary="The patient's latest twin snapshot, and whether it is current or since when stale",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        state = selectors.twin_state_for(patient=patient)
        latest = state.latest if state else None
        return Response(
            {
                "status": {
                    **services.twin_status(state),
                    "recalibration_pending": selectors.recalibration_pending(patient=patient),
                },
                "snapshot": services.snapshot_payload(latest) if latest else None,
            }
        )


class TwinSnapshotListApi(APIView):
    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 500

    @extend_schema(
        operation_id="patient_twin_snapshots_list",
        responses={
            200: _page("TwinSnapshotPage", SnapshotSummaryOutput),
            404: NOT_FOUND,
            **COMMON_ERRORS,
        },
        summary="Every snapshot of the patient's twin, newest first (what it predicted when)",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(
            selectors.snapshots_of(patient=patient), request, view=self
        )
        return paginator.get_paginated_response(SnapshotSummaryOutput(page, many=True).data)


class TwinSnapshotDetailApi(APIView):
    @extend_schema(
        operation_id="patient_twin_snapshot_retrieve",
        responses={200: SnapshotOutput, 404: NOT_FOUND, **COMMON_ERRORS},
        summary="One stored snapshot with its bands",
    )
    def get(self, request: Request, patient_id: int, snapshot_id: int) -> Response:
        snapshot = _snapshot_or_404(request, patient_id, snapshot_id)
        return Response(services.snapshot_payload(snapshot))


class AlertOutput(serializers.ModelSerializer[TwinAlert]):
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.get_username", allow_null=True, default=None
    )

    class Meta:
        model = TwinAlert
        fields = [
            "id",
            "patient",
            "kind",
            "variable",
            "message",
            "evidence",
            "snapshot",
            "observation",
            "created_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledged_reason",
        ]


class AlertListApi(APIView):
    class Pagination(LimitOffsetPagination):
        default_limit = 100
        max_limit = 1000

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "patient",
                # a database id: what the view accepts, so a schema-valid value is never refused
                {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                description="Only this patient's alerts",
            ),
            OpenApiParameter(
                "state", str, enum=["open", "all"], description="Open alerts (default) or all"
            ),
        ],
        operation_id="alerts_list",
        responses={
            200: _page("AlertPage", AlertOutput),
            400: OpenApiResponse(description="The patient parameter is not a whole number"),
            **COMMON_ERRORS,
        },
        summary="Drift and risk-threshold alerts of the caller's patients, newest first",
    )
    def get(self, request: Request) -> Response:
        raw_patient = str(request.query_params.get("patient", "")).strip()
        patient_id = int(raw_patient) if raw_patient.isdigit() else None
        if raw_patient and patient_id is None:
            return Response(
                {"patient": ["A patient id is a whole number."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        qs = selectors.alerts_for(
            user=_user(request),
            open_only=request.query_params.get("state", "open") != "all",
            patient_id=patient_id,
        )
        paginator = self.Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        recorder.patients_listed(user=_user(request), patient_ids=[a.patient_id for a in page])
        return paginator.get_paginated_response(AlertOutput(page, many=True).data)


class AcknowledgeInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)


class AlertAcknowledgeApi(APIView):
    @extend_schema(
        operation_id="alert_acknowledge",
        request=AcknowledgeInput,
        responses={
            200: AlertOutput,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="No reason, or already acknowledged"
            ),
            404: OpenApiResponse(
                ErrorOutput, description="No such alert for the caller's patients"
            ),
            **COMMON_ERRORS,
        },
        summary="Acknowledge an alert with a reason",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        user = _user(request)
        try:
            alert = selectors.alert_get(user=user, alert_id=alert_id)
        except TwinAlert.DoesNotExist as exc:
            raise Http404("No such alert.") from exc
        data = AcknowledgeInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.alert_acknowledge(alert=alert, user=user, reason=data.validated_data["reason"])
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AlertOutput(alert).data)


class PlanItemInput(serializers.Serializer[Any]):
    action = serializers.ChoiceField(
        choices=["add", "stop"],
        default="add",
        help_text="add an intervention (or raise a current course), or stop a drug class the "
        "patient takes now from start on (no dose, intensity or stop then)",
    )
    intervention = serializers.CharField(
        help_text="A treatment class (e.g. ace_inhibitor, statin, metformin) or lifestyle item"
    )
    dose = serializers.FloatField(default=1.0, help_text="Multiple of the standard dose")
    start = serializers.DateField(help_text="Not in the past")
    stop = serializers.DateField(required=False, allow_null=True, default=None)
    intensity = serializers.ChoiceField(
        choices=["low", "moderate", "high"], required=False, allow_null=True, default=None
    )


class PlanInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=80)
    items = PlanItemInput(many=True)


class WhatIfOutput(serializers.ModelSerializer[WhatIfRun]):
    class Meta:
        model = WhatIfRun
        fields = [
            "id",
            "patient",
            "name",
            "plans",
            "horizon_years",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "model_version",
            "result",
        ]


class WhatIfInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    horizon_years = serializers.FloatField(default=10.0, min_value=0.5, max_value=30.0)
    plans = PlanInput(many=True)


class WhatIfSubmitApi(APIView):
    @extend_schema(
        operation_id="patient_whatif_create",
        request=WhatIfInput,
        responses={
            202: WhatIfOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Every problem with the plans"),
            404: NOT_FOUND,
            **COMMON_ERRORS,
        },
        summary="Compare up to six plans against current care (runs as a task; poll the result)",
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        data = WhatIfInput(data=request.data)
        data.is_valid(raise_exception=True)
        plans: dict[str, list[services.PlanItemInput]] = {}
        for plan in data.validated_data["plans"]:
            if plan["name"] in plans:
                return Response(
                    {"plans": [f"two plans are named {plan['name']!r}"]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            plans[plan["name"]] = [services.PlanItemInput(**item) for item in plan["items"]]
        try:
            run = services.whatif_submit(
                user=_user(request),
                patient=patient,
                plans=plans,
                name=data.validated_data["name"],
                horizon_years=data.validated_data["horizon_years"],
            )
        except services.PlanError as exc:
            return Response({"problems": exc.problems}, status=status.HTTP_400_BAD_REQUEST)
        return Response(WhatIfOutput(run).data, status=status.HTTP_202_ACCEPTED)


class WhatIfDetailApi(APIView):
    @extend_schema(
        operation_id="whatif_retrieve",
        responses={
            200: WhatIfOutput,
            404: OpenApiResponse(ErrorOutput, description="No such run for the caller's patients"),
            **COMMON_ERRORS,
        },
        summary="A what-if run: pending, running, succeeded with its comparison, or failed with why",
    )
    def get(self, request: Request, run_id: int) -> Response:
        try:
            run = selectors.whatif_get(user=_user(request), run_id=run_id)
        except WhatIfRun.DoesNotExist as exc:
            raise Http404("No such what-if run.") from exc
        return Response(WhatIfOutput(run).data)
