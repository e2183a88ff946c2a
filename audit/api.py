"""Emergency access through the API, for integrations acting for a clinician."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from audit import selectors, services
from audit.models import EmergencyAccess
from patients.api.views import COMMON_ERRORS, ErrorOutput
from patients.models import Patient


class EmergencyAccessInput(serializers.Serializer[Any]):
    patient = serializers.IntegerField(min_value=1, help_text="The patient's record id")
    reason = serializers.CharField(
        min_length=services.MIN_REASON_LENGTH, max_length=2000, trim_whitespace=True
    )


class EmergencyAccessOutput(serializers.ModelSerializer[EmergencyAccess]):
    class Meta:
        model = EmergencyAccess
        fields = ["id", "patient", "granted_at", "expires_at"]


class EmergencyAccessApi(APIView):
    @extend_schema(
        operation_id="emergency_access_create",
        request=EmergencyAccessInput,
        responses={
            201: EmergencyAccessOutput,
            400: OpenApiResponse(ErrorOutput, description="No reason, or access not allowed"),
            404: OpenApiResponse(ErrorOutput, description="No such patient"),
            **COMMON_ERRORS,
        },
        summary=(
            "Break the glass: access to a patient outside the caller's care teams for a fixed "
            "window, with a reason; audited and notified to the privacy officer"
        ),
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, User)
        data = EmergencyAccessInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            patient = selectors.patient_for_emergency_access(
                patient_id=data.validated_data["patient"]
            )
        except Patient.DoesNotExist as exc:
            raise Http404("No such patient.") from exc
        try:
            grant = services.emergency_access_grant(
                user=request.user,
                patient=patient,
                reason=data.validated_data["reason"],
                request_id=getattr(request._request, "request_id", ""),
                ip=request.META.get("REMOTE_ADDR") or None,
            )
        except services.EmergencyAccessRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(EmergencyAccessOutput(grant).data, status=status.HTTP_201_CREATED)
