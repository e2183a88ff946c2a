"""The ingestion endpoint home devices post their readings to. Thin: parse, one service call, answer.

The serializers below describe the request and the answer in the OpenAPI schema. The batch is
checked by ``devices.readings`` rather than by them because each reading is accepted or rejected on
its own (a serializer accepts or refuses the whole body), and the answer is built as plain data
because a DRF serializer would spend longer on 5,000 results than the whole ingestion does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import recorder
from devices import services
from devices.authentication import DeviceTokenAuthentication, HasDeviceToken
from devices.models import DeviceToken
from devices.readings import MAX_BATCH, MAX_ID_LENGTH, BatchError

_TIME_HELP = (
    "When the reading was taken: ISO 8601 date and time with a timezone (Z or an offset), "
    "not in the future (5 minutes of clock skew are allowed)."
)


class _ReadingBase(serializers.Serializer[Any]):
    id = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        help_text="The device's own id of this reading. Sending it again is answered 'duplicate'.",
    )
    time = serializers.DateTimeField(help_text=_TIME_HELP)


class BloodPressureReading(_ReadingBase):
    type = serializers.ChoiceField(choices=["blood_pressure"])
    systolic = serializers.FloatField(help_text="Possible range 40–300 mm[Hg].")
    diastolic = serializers.FloatField(
        help_text="Possible range 20–200 mm[Hg]; below the systolic."
    )
    unit = serializers.CharField(help_text="mm[Hg] (also written mmHg).")


class WeightReading(_ReadingBase):
    type = serializers.ChoiceField(choices=["weight"])
    value = serializers.FloatField(help_text="Possible range 0.3–500 kg.")
    unit = serializers.CharField(help_text="kg, g or [lb_av] (also written lb or lbs).")


class GlucoseReading(_ReadingBase):
    type = serializers.ChoiceField(choices=["glucose"])
    value = serializers.FloatField(
        help_text="Capillary blood glucose; possible range 10–2000 mg/dL."
    )
    unit = serializers.CharField(help_text="mg/dL or mmol/L (stored converted to mg/dL).")


class DeviceReadingBatch(serializers.Serializer[Any]):
    readings = PolymorphicProxySerializer(
        component_name="DeviceReading",
        serializers={
            "blood_pressure": BloodPressureReading,
            "weight": WeightReading,
            "glucose": GlucoseReading,
        },
        resource_type_field_name="type",
        many=True,
        help_text=f"At most {MAX_BATCH:,} readings. A device sends only its own kind of reading.",
    )


class DeviceReadingOutcome(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="Position of the reading in the batch.")
    id = serializers.CharField(help_text="The reading's id as sent.")
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    field = serializers.CharField(required=False, help_text="Rejected only: the offending field.")
    reason = serializers.CharField(required=False, help_text="Rejected only: why.")


class DeviceReadingBatchResult(serializers.Serializer[Any]):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = DeviceReadingOutcome(many=True)


class DeviceBatchProblem(serializers.Serializer[Any]):
    index = serializers.IntegerField(
        allow_null=True, help_text="The reading, or null for the batch."
    )
    field = serializers.CharField()
    message = serializers.CharField()


class DeviceBatchRefused(serializers.Serializer[Any]):
    detail = serializers.CharField()
    problems = DeviceBatchProblem(many=True)


class DeviceAuthError(serializers.Serializer[Any]):
    detail = serializers.CharField()


def _refused(problems: list[dict[str, Any]]) -> Response:
    return Response(
        {"detail": "The batch was not accepted; nothing was written.", "problems": problems},
        status=status.HTTP_400_BAD_REQUEST,
    )


class DeviceReadingsApi(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [HasDeviceToken]

    @extend_schema(
        operation_id="device_readings_create",
        request=DeviceReadingBatch,
        responses={
            201: OpenApiResponse(
                DeviceReadingBatchResult, description="At least one reading stored"
            ),
            200: OpenApiResponse(
                DeviceReadingBatchResult,
                description="Nothing new stored (duplicates or rejections)",
            ),
            400: OpenApiResponse(
                DeviceBatchRefused,
                description="The batch is not the right shape; nothing was written",
            ),
            401: OpenApiResponse(
                DeviceAuthError,
                description="No device token, or an unknown, revoked or expired one",
            ),
            403: OpenApiResponse(
                DeviceAuthError, description="Credentials other than a device token"
            ),
        },
        examples=[
            OpenApiExample(
                "A cuff's batch",
                request_only=True,
                value={
                    "readings": [
                        {
                            "id": "omron-000123",
                            "type": "blood_pressure",
                            "time": "2026-11-30T07:45:00+01:00",
                            "systolic": 132,
                            "diastolic": 84,
                            "unit": "mm[Hg]",
                        }
                    ]
                },
            ),
            OpenApiExample(
                "The answer",
                response_only=True,
                status_codes=["201"],
                value={
                    "accepted": 1,
                    "duplicate": 1,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "id": "m-1", "status": "accepted"},
                        {"index": 1, "id": "m-1", "status": "duplicate"},
                        {
                            "index": 2,
                            "id": "m-2",
                            "status": "rejected",
                            "field": "unit",
                            "reason": "unknown unit: unit 'mmol' is not accepted for glucose "
                            "(accepted: mg/dL, mmol/L)",
                        },
                    ],
                },
            ),
        ],
        summary="Send a batch of home-device readings (Authorization: Device <token>)",
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.auth, DeviceToken)
        recorder.device_accessed(
            device=f"device:{request.auth.prefix}", patient_id=request.auth.patient_id
        )
        try:
            body = request.data
        except ParseError as exc:
            return _refused([{"index": None, "field": "(body)", "message": str(exc.detail)}])
        try:
            result = services.device_readings_ingest(token=request.auth, body=body)
        except BatchError as exc:
            return _refused([p.as_dict() for p in exc.problems])
        stored = result.count(services.ACCEPTED) > 0
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if stored else status.HTTP_200_OK
        )
