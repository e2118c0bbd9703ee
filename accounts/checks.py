"""Deployment checks of the accounts app (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Error as CheckError
from django.core.checks import Warning as CheckWarning
from django.utils.module_loading import import_string


@register(Tags.security, deploy=True)
def check_throttle_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The sign-in throttle counts in the default cache: in each process's memory, every
    gunicorn worker and every web container keeps its own counts, so the limits multiply by
    their number. Development (DEBUG, which the embedded default runs with) is one process."""
    if settings.DEBUG:
        return []
    try:
        backend = import_string(settings.CACHES["default"]["BACKEND"])
    except (ImportError, KeyError):
        return []  # Django's own cache checks report a cache that cannot be loaded
    hint = "Set DJANGO_CACHE_URL to a cache every web process shares, e.g. redis://redis:6379/1."
    if issubclass(backend, DummyCache):
        return [
            CheckError(
                "The default cache keeps nothing, so failed sign-ins are never counted and "
                "password guessing is not throttled.",
                hint=hint,
                id="accounts.E001",
            )
        ]
    if issubclass(backend, LocMemCache):
        return [
            CheckWarning(
                "The default cache is each process's own memory (DJANGO_CACHE_URL is not set): "
                "every web process counts failed sign-ins apart, so the sign-in throttle's "
                "limits multiply by the number of processes.",
                hint=hint,
                id="accounts.W001",
            )
        ]
    return []
