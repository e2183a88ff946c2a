from django.urls import path

from patients.api import notes, views

app_name = "patients-api"

urlpatterns = [
    path("patients/", views.PatientListApi.as_view(), name="patient-list"),
    path("patients/<int:patient_id>/", views.PatientDetailApi.as_view(), name="patient-detail"),
    path(
        "patients/<int:patient_id>/observations/",
        views.PatientObservationsApi.as_view(),
        name="patient-observations",
    ),
    path(
        "patients/<int:patient_id>/fhir/", views.PatientExportApi.as_view(), name="patient-export"
    ),
    path("fhir/bundles/", views.BundleImportApi.as_view(), name="bundle-import"),
    path("patients/<int:patient_id>/notes/", notes.NoteListApi.as_view(), name="notes"),
    path(
        "patients/<int:patient_id>/notes/summary/",
        notes.NoteSummaryApi.as_view(),
        name="notes-summary",
    ),
    path(
        "patients/<int:patient_id>/notes/<int:note_id>/",
        notes.NoteDetailApi.as_view(),
        name="note",
    ),
    path(
        "patients/<int:patient_id>/notes/<int:note_id>/sign/",
        notes.NoteSignApi.as_view(),
        name="note-sign",
    ),
    path(
        "patients/<int:patient_id>/notes/<int:note_id>/amend/",
        notes.NoteAmendApi.as_view(),
        name="note-amend",
    ),
]
