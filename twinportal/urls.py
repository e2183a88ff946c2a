"""Top-level URLs: pages, the admin, authentication, the REST API and its OpenAPI schema."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from signin.views import SignInView

urlpatterns = [
    path("", include("patients.urls")),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("", include("signin.urls")),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("patients.api.urls")),
    path("api/v1/devices/", include("devices.urls")),
    path("api/v1/", include("twins.api.urls")),
    path("", include("audit.urls")),
    path("api/v1/", include("audit.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 as JSON under /api/ (clients parse it), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 as JSON under /api/; a body over the upload limit is 413 there, not a bare 400."""
    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return JsonResponse(
                {"detail": f"The request body is larger than the limit of {limit} bytes."},
                status=413,
            )
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


handler404 = not_found
handler400 = bad_request
