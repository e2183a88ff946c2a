"""REST API for devices, integrations and the pages. One class per operation; each is thin: parse,
call one selector or service, serialise. Every patient-scoped lookup goes through the care-team
selector, so a patient outside the caller's teams is a 404, never a 403."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiScope, User
from audit import recorder
from patients import selectors
from patients.fhir.exporter import patient_bundle
from patients.fhir.importer import bundle_import
from patients.fhir.parse import BundleError
from patients.models import ImportBatch, Observation, Patient


def _user(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def _patient_or_404(request: Request, patient_id: int) -> Patient:
    try:
        return selectors.patient_get(user=_user(request), patient_id=patient_id)
    except Patient.DoesNotExist as exc:
        raise Http404("No such patient.") from exc


class PatientOutput(serializers.ModelSerializer[Patient]):
    class Meta:
        model = Patient
        fields = [
            "id",
            "fhir_id",
            "mrn",
            "given_name",
            "family_name",
            "sex",
            "birth_date",
            "deceased_at",
        ]


class ObservationOutput(serializers.ModelSerializer[Observation]):
    class Meta:
        model = Observation
        fields = [
            "id",
            "fhir_id",
            "code",
            "display",
            "category",
            "value",
            "unit",
            "value_display",
            "value_string",
            "effective_at",
            "source",
            "implausible",
            "implausible_reason",
            "unit_assumed",
        ]


ErrorOutput = inline_serializer("Error", fields={"detail": serializers.CharField()})
FieldErrors = inline_serializer(
    "FieldErrors",
    fields={"code": serializers.ListField(child=serializers.CharField(), required=False)},
)
#: Responses every authenticated endpoint can give besides its own.
COMMON_ERRORS: dict[int, Any] = {
    401: OpenApiResponse(ErrorOutput, description="No or invalid credentials"),
    403: OpenApiResponse(ErrorOutput, description="Authenticated but not allowed"),
}
NOT_FOUND = OpenApiResponse(
    ErrorOutput, description="No such patient on the caller's care teams (never a 403)"
)


def _page(name: str, item: type[serializers.Serializer[Any]]) -> Any:
    """The schema of one ``LimitOffsetPagination`` page of ``item``."""
    return inline_serializer(
        name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


class PatientListQuery(serializers.Serializer[Any]):
    """The list's query string, checked like a body: a NUL character or an over-long term is a
    400 naming the parameter, never a database error."""

    search = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")


class ObservationListQuery(serializers.Serializer[Any]):
    code = serializers.CharField(
        max_length=Observation._meta.get_field("code").max_length or 20,
        error_messages={"required": "This query parameter is required."},
    )


class PatientListApi(APIView):
    class Pagination(LimitOffsetPagination):
        default_limit = 100
        max_limit = 1000

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "search",
                {"type": "string", "maxLength": 100, "pattern": r"^[^\x00]*$"},
                description="Family or given name, or exact MRN (at most 100 characters)",
            )
        ],
        operation_id="patients_list",
        responses={
            200: _page("PatientPage", PatientOutput),
            400: OpenApiResponse(
                FieldErrors, description="The search term is too long or holds a NUL character"
            ),
            **COMMON_ERRORS,
        },
        summary="Patients on the caller's care teams",
    )
    def get(self, request: Request) -> Response:
        query = PatientListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.patient_list(user=_user(request), search=query.validated_data["search"])
        paginator = self.Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        recorder.patients_listed(user=_user(request), patient_ids=[p.pk for p in page])
        return paginator.get_paginated_response(PatientOutput(page, many=True).data)


class PatientDetailApi(APIView):
    @extend_schema(
        operation_id="patients_retrieve",
        responses={200: PatientOutput, 404: NOT_FOUND, **COMMON_ERRORS},
        summary="One patient (404 outside the caller's care teams)",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        return Response(PatientOutput(_patient_or_404(request, patient_id)).data)


class PatientObservationsApi(APIView):
    class Pagination(LimitOffsetPagination):
        default_limit = 500
        max_limit = 5000

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "code",
                {"type": "string", "maxLength": 20, "pattern": r"^\s*[^\x00\s][^\x00]*$"},
                required=True,
                allow_blank=False,
                description="LOINC code, e.g. 8480-6 for systolic BP",
            )
        ],
        operation_id="patient_observations_list",
        responses={
            200: _page("ObservationPage", ObservationOutput),
            400: OpenApiResponse(
                FieldErrors,
                description="The code parameter is missing, blank, too long or holds a NUL character",
            ),
            404: NOT_FOUND,
            **COMMON_ERRORS,
        },
        summary="One patient's readings of one LOINC code, oldest first",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        query = ObservationListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        code = query.validated_data["code"]
        paginator = self.Pagination()
        page = paginator.paginate_queryset(
            selectors.observations_for(patient=patient, code=code), request, view=self
        )
        return paginator.get_paginated_response(ObservationOutput(page, many=True).data)


class PatientExportApi(APIView):
    @extend_schema(
        operation_id="patient_fhir_export",
        responses={
            (200, "application/fhir+json"): OpenApiTypes.OBJECT,
            404: NOT_FOUND,
            **COMMON_ERRORS,
        },
        summary="The patient's whole record as a FHIR R4 Bundle",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        return Response(patient_bundle(patient), content_type="application/fhir+json")


class _RawJSONParser(JSONParser):
    """Keeps the bytes as received: the bundle's SHA-256 is of what was sent."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read()


class _RawFhirJSONParser(_RawJSONParser):
    media_type = "application/fhir+json"


class ImportProblem(serializers.Serializer[Any]):
    entry = serializers.IntegerField(allow_null=True, help_text="Index in Bundle.entry, if any")
    resource_type = serializers.CharField()
    field = serializers.CharField(help_text="FHIR path of the offending element")
    message = serializers.CharField()


#: The shape of what the endpoint accepts; full FHIR R4 validity is checked on import.
BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 Bundle holding one Patient and that patient's resources.",
    "required": ["resourceType", "entry"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "example": "transaction"},
        "entry": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["resource"],
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {"resourceType": {"type": "string"}},
                    },
                },
            },
        },
    },
}


class BundleImportApi(APIView):
    parser_classes = [_RawJSONParser, _RawFhirJSONParser]
    #: an ``import`` API token may call this endpoint (and no other)
    api_token_scopes = (ApiScope.IMPORT,)

    class Output(serializers.ModelSerializer[ImportBatch]):
        class Meta:
            model = ImportBatch
            fields = ["id", "status", "sha256", "patient", "counts", "started_at", "finished_at"]

    @extend_schema(
        operation_id="fhir_bundle_import",
        request={"application/fhir+json": BUNDLE_SCHEMA, "application/json": BUNDLE_SCHEMA},
        responses={
            201: Output,
            200: Output,
            400: inline_serializer(
                "ImportFailure",
                fields={"detail": serializers.CharField(), "problems": ImportProblem(many=True)},
            ),
            **COMMON_ERRORS,
        },
        summary="Import one FHIR R4 Bundle (all or nothing; re-sending the same bundle changes nothing)",
    )
    def post(self, request: Request) -> Response:
        user = _user(request)
        if not (user.is_data_manager or user.is_superuser):
            return Response(
                {"detail": "Only data managers may import records."},
                status=status.HTTP_403_FORBIDDEN,
            )
        raw = (
            request.data
            if isinstance(request.data, bytes)
            else json.dumps(request.data).encode("utf-8")
        )
        try:
            batch = bundle_import(
                raw=raw, channel=ImportBatch.Channel.API, user=user, filename="api"
            )
        except BundleError as exc:
            return Response(
                {
                    "detail": "The bundle was not imported; nothing was written.",
                    "problems": [p.as_dict() for p in exc.problems],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        code = (
            status.HTTP_201_CREATED
            if batch.status == ImportBatch.Status.SUCCEEDED
            else status.HTTP_200_OK
        )
        return Response(self.Output(batch).data, status=code)
