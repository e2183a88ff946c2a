from django.urls import path

from devices.api import DeviceReadingsApi

app_name = "devices-api"

urlpatterns = [
    path("readings/", DeviceReadingsApi.as_view(), name="readings"),
]
