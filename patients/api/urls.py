from django.urls import path

from patients.api import views

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
]
