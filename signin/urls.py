"""The second step of signing in (the first is the ``login`` address in ``twinportal.urls``)."""

from django.urls import path

from signin import views

urlpatterns = [
    path("accounts/login/code/", views.code_view, name="login-code"),
    path("accounts/login/enrol/", views.enrol_view, name="login-enrol"),
]
