"""REST API of a patient's clinical notes for integrations: list, read, write a draft, sign, amend,
and the cross-note summary. The same selectors and services as the notes pages; a patient outside
the caller's care teams (or a draft of someone else) is a 404."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients import page_services, selectors, services
from patients.api.views import COMMON_ERRORS, NOT_FOUND, ErrorOutput, _page, _patient_or_404, _user
from patients.models import ClinicalNote, NoteSummary, Patient

NOTE_NOT_FOUND = OpenApiResponse(
    ErrorOutput,
    description="No such patient on the caller's care teams, no such note, or a draft of another "
    "author",
)
REFUSED = OpenApiResponse(ErrorOutput, description="Why the note cannot be changed this way")


class NoteOutput(serializers.ModelSerializer[ClinicalNote]):
    next_version = serializers.IntegerField(
        source="next_version.pk",
        read_only=True,
        allow_null=True,
        help_text="The amendment that replaced this version (null while it is current)",
    )

    class Meta:
        model = ClinicalNote
        fields = [
            "id",
            "fhir_id",
            "patient",
            "status",
            "version",
            "previous_version",
            "next_version",
            "title",
            "note_type",
            "text",
            "author_name",
            "author_role",
            "written_at",
            "signed_at",
        ]


def _note_or_404(request: Request, patient_id: int, note_id: int) -> ClinicalNote:
    try:
        return selectors.note_get(user=_user(request), patient_id=patient_id, note_id=note_id)
    except (Patient.DoesNotExist, ClinicalNote.DoesNotExist) as exc:
        raise Http404("No such note.") from exc


def _refused(exc: ValueError) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class NoteListApi(APIView):
    """``GET``: the current version of every note the caller may read, newest first.
    ``POST``: a new draft by the caller."""

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 500

    class NoteDraftInput(serializers.Serializer[Any]):
        title = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
        text = serializers.CharField(trim_whitespace=False)

        def validate_text(self, value: str) -> str:
            if not value.strip():
                raise serializers.ValidationError("A note cannot be empty.")
            return value

    @extend_schema(
        operation_id="patient_notes_list",
        responses={200: _page("NotePage", NoteOutput), 404: NOT_FOUND, **COMMON_ERRORS},
        summary="The patient's notes, newest first: current versions of signed notes and the "
        "caller's own drafts",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(
            selectors.current_notes_visible_to(user=_user(request), patient=patient).select_related(
                "next_version"
            ),
            request,
            view=self,
        )
        return paginator.get_paginated_response(NoteOutput(page, many=True).data)

    @extend_schema(
        operation_id="patient_notes_create",
        request=NoteDraftInput,
        responses={201: NoteOutput, 400: OpenApiTypes.OBJECT, 404: NOT_FOUND, **COMMON_ERRORS},
        summary="Start a draft note (only its author sees it until it is signed)",
    )
    def post(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        data = self.NoteDraftInput(data=request.data)
        data.is_valid(raise_exception=True)
        note = page_services.note_draft_save(
            patient=patient, author=_user(request), **data.validated_data
        )
        return Response(NoteOutput(note).data, status=status.HTTP_201_CREATED)


class NoteDetailApi(APIView):
    """``GET``: one note (any version). ``PATCH``: change the caller's own draft."""

    class NoteDraftUpdateInput(serializers.Serializer[Any]):
        title = serializers.CharField(max_length=255, required=False, allow_blank=True)
        text = serializers.CharField(required=False, trim_whitespace=False)

        def validate_text(self, value: str) -> str:
            if not value.strip():
                raise serializers.ValidationError("A note cannot be empty.")
            return value

    @extend_schema(
        operation_id="patient_note_retrieve",
        responses={200: NoteOutput, 404: NOTE_NOT_FOUND, **COMMON_ERRORS},
        summary="One note; a replaced version points at the amendment that replaced it",
    )
    def get(self, request: Request, patient_id: int, note_id: int) -> Response:
        note = _note_or_404(request, patient_id, note_id)
        return Response(NoteOutput(note).data)

    @extend_schema(
        operation_id="patient_note_update",
        request=NoteDraftUpdateInput,
        responses={200: NoteOutput, 400: REFUSED, 404: NOTE_NOT_FOUND, **COMMON_ERRORS},
        summary="Change the caller's own draft (a signed note is amended instead)",
    )
    def patch(self, request: Request, patient_id: int, note_id: int) -> Response:
        note = _note_or_404(request, patient_id, note_id)
        data = self.NoteDraftUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            note = page_services.note_draft_save(
                patient=note.patient,
                author=_user(request),
                text=data.validated_data.get("text", note.text),
                title=data.validated_data.get("title", note.title),
                draft=note,
            )
        except ValueError as exc:
            return _refused(exc)
        return Response(NoteOutput(note).data)


class NoteSignApi(APIView):
    @extend_schema(
        operation_id="patient_note_sign",
        request=None,
        responses={200: NoteOutput, 400: REFUSED, 404: NOTE_NOT_FOUND, **COMMON_ERRORS},
        summary="Sign the caller's own draft: from then on it never changes",
    )
    def post(self, request: Request, patient_id: int, note_id: int) -> Response:
        note = _note_or_404(request, patient_id, note_id)
        try:
            note = services.note_sign(note=note)
        except ValueError as exc:
            return _refused(exc)
        return Response(NoteOutput(note).data)


class NoteAmendApi(APIView):
    class NoteAmendInput(serializers.Serializer[Any]):
        text = serializers.CharField(trim_whitespace=False)

    @extend_schema(
        operation_id="patient_note_amend",
        request=NoteAmendInput,
        responses={201: NoteOutput, 400: REFUSED, 404: NOTE_NOT_FOUND, **COMMON_ERRORS},
        summary="Amend a signed note: a new signed version; the one it replaces is kept",
    )
    def post(self, request: Request, patient_id: int, note_id: int) -> Response:
        note = _note_or_404(request, patient_id, note_id)
        data = self.NoteAmendInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            amendment = services.note_amend(
                note=note, text=data.validated_data["text"], author=_user(request)
            )
        except ValueError as exc:
            return _refused(exc)
        return Response(NoteOutput(amendment).data, status=status.HTTP_201_CREATED)


class NoteSummaryApi(APIView):
    class NoteSummaryOutput(serializers.ModelSerializer[NoteSummary]):
        class Meta:
            model = NoteSummary
            fields = ["status", "computed_at", "note_count", "pipeline_version", "summary", "error"]

    @extend_schema(
        operation_id="patient_notes_summary_retrieve",
        responses={
            200: NoteSummaryOutput,
            404: OpenApiResponse(
                ErrorOutput,
                description="No such patient on the caller's care teams, or no summary yet",
            ),
            **COMMON_ERRORS,
        },
        summary="The cross-note summary (problems, medication changes, disagreements, open "
        "follow-ups), each item with its source note and character span",
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = _patient_or_404(request, patient_id)
        summary = selectors.note_summary_for(patient=patient)
        if summary is None:
            raise Http404("No notes summary for this patient yet.")
        return Response(self.NoteSummaryOutput(summary).data)
