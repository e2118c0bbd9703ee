"""The production URLconf plus ``/bench/floor`` (see ``floor_settings``)."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import handler404, handler500
from config.urls import urlpatterns as production_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def floor(request: HttpRequest) -> JsonResponse:
    """One SQL query, one small JSON answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, last_version_number FROM registry_registeredmodel WHERE id = 1"
        )
        row = cursor.fetchone()
    return JsonResponse({"name": row[0] if row else None, "versions": row[1] if row else 0})


urlpatterns = [path("bench/floor", floor), *production_urlpatterns]
