"""URL wiring. The MLflow routes are served under the three prefixes the clients use."""

import logging

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts import urls as accounts_urls
from config.metrics import metrics_view
from config.periodic import periodic_tasks_health
from config.schema import SwaggerView
from registry import artifact_urls
from registry import urls as registry_urls
from webhooks import urls as webhooks_urls

logger = logging.getLogger(__name__)


def health(request: HttpRequest) -> HttpResponse:
    """Liveness and database reachability, for load balancers and compose health checks.

    Anyone may call it, so a failure names no host or port (the log has the details)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any database failure means "not healthy"
        logger.warning("Health check: database unavailable: %s", str(exc).strip())
        response = JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
        response["Retry-After"] = "5"
        return response
    return HttpResponse("OK", content_type="text/plain")


urlpatterns = [
    path("health", health, name="health"),
    path("health/periodic-tasks", periodic_tasks_health, name="health-periodic-tasks"),
    path("metrics", metrics_view, name="metrics"),
    path("api/2.0/mlflow/", include((registry_urls.urlpatterns, "registry"), namespace="mlflow")),
    path(
        "ajax-api/2.0/mlflow/",
        include((registry_urls.urlpatterns, "registry"), namespace="mlflow-ajax"),
    ),
    path(
        "api/2.0/preview/mlflow/",
        include((registry_urls.urlpatterns, "registry"), namespace="mlflow-preview"),
    ),
    path("api/2.0/mlflow/", include(webhooks_urls.urlpatterns)),
    path("ajax-api/2.0/mlflow/", include(webhooks_urls.urlpatterns)),
    path("api/2.0/preview/mlflow/", include(webhooks_urls.urlpatterns)),
    path("api/2.0/registry/", include(webhooks_urls.registry_urlpatterns)),
    path("api/2.0/registry/", include(registry_urls.registry_urlpatterns)),
    path("api/2.0/", include(accounts_urls.urlpatterns)),
    path("api/2.0/mlflow-artifacts/", include(artifact_urls.mlflow_artifacts_urlpatterns)),
    path("api/2.0/registry/", include(artifact_urls.registry_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    # The web UI last: its routes are the site's root.
    path("", include("ui.urls", namespace="ui")),
]

handler404 = "config.exception_handlers.api_aware_404"
handler500 = "config.exception_handlers.api_aware_500"
