from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("patients/<int:patient_id>/", views.patient_twin, name="twin"),
    path("patients/<int:patient_id>/whatif/", views.whatif_new, name="whatif-new"),
    path("patients/<int:patient_id>/notes/", views.notes, name="notes"),
    path("patients/<int:patient_id>/notes/new/", views.note_write, name="note-new"),
    path("patients/<int:patient_id>/notes/<int:note_id>/", views.note_detail, name="note"),
    path("patients/<int:patient_id>/notes/<int:note_id>/edit/", views.note_write, name="note-edit"),
    path(
        "patients/<int:patient_id>/notes/<int:note_id>/amend/", views.note_amend, name="note-amend"
    ),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("whatif/<int:run_id>/", views.whatif_detail, name="whatif"),
    path("whatif/<int:run_id>/status/", views.whatif_status, name="whatif-status"),
    path("whatif/<int:run_id>/name/", views.whatif_name, name="whatif-name"),
]
