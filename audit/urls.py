from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("emergency-access/", views.emergency_access, name="emergency-access"),
]
