from django.urls import path

from twins.api import views

app_name = "twins-api"

urlpatterns = [
    path("patients/<int:patient_id>/twin/", views.TwinLatestApi.as_view(), name="twin-latest"),
    path(
        "patients/<int:patient_id>/twin/snapshots/",
        views.TwinSnapshotListApi.as_view(),
        name="twin-snapshots",
    ),
    path(
        "patients/<int:patient_id>/twin/snapshots/<int:snapshot_id>/",
        views.TwinSnapshotDetailApi.as_view(),
        name="twin-snapshot",
    ),
    path(
        "patients/<int:patient_id>/whatif/",
        views.WhatIfSubmitApi.as_view(),
        name="whatif-submit",
    ),
    path("whatif/<int:run_id>/", views.WhatIfDetailApi.as_view(), name="whatif-detail"),
    path("alerts/", views.AlertListApi.as_view(), name="alerts"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        views.AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
]
