from django.urls import path

from audit.api import EmergencyAccessApi

app_name = "audit-api"

urlpatterns = [
    path("emergency-access/", EmergencyAccessApi.as_view(), name="emergency-access"),
]
