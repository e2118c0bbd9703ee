"""Start-up guards of the service's own configuration.

With ``DJANGO_DEBUG`` off, static files are served from what ``manage.py collectstatic`` wrote
to ``STATIC_ROOT``, under the hashed names its manifest (``staticfiles.json``) lists; every page
of the web UI and the admin looks its stylesheets and scripts up there. Without the manifest, or
with one written by an older release that lacks files the apps now ship, each page fails with a
500. So the web entry points (``config/wsgi.py``, ``config/asgi.py``) refuse to start instead,
and ``manage.py check --deploy`` reports it as an error. Not a check of every command:
``collectstatic`` itself, and ``migrate``, run before the files are collected.

The embedded default (``make run``, debug on) and the test settings serve the apps' own folders
and have no manifest to miss.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Error as CheckError
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages

#: How many of the files missing from a stale manifest a message names.
_SHOWN_MISSING = 5


def static_manifest_problem() -> str | None:
    """What is wrong with the static files manifest the settings rely on, or ``None``."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin):
        return None
    location = storage.manifest_storage.path(storage.manifest_name)
    command = "`python manage.py collectstatic --noinput` with the same settings"
    if not storage.manifest_storage.exists(storage.manifest_name):
        return (
            f"The static files manifest {location} does not exist: with DJANGO_DEBUG off every "
            f"page of the web UI would fail. Run {command} (it writes to DJANGO_STATIC_ROOT) "
            "before starting the web server."
        )
    listed, _hash = storage.load_manifest()
    ignore = apps.get_app_config("staticfiles").ignore_patterns
    missing = sorted(
        {
            path
            for finder in finders.get_finders()
            for path, _storage in finder.list(ignore)
            if path not in listed
        }
    )
    if missing:
        shown = ", ".join(missing[:_SHOWN_MISSING]) + (
            ", ..." if len(missing) > _SHOWN_MISSING else ""
        )
        return (
            f"The static files manifest {location} lacks {len(missing)} file(s) the installed "
            f"apps ship ({shown}): it was written for another release, and pages that use them "
            f"would fail. Run {command} again before starting the web server."
        )
    return None


def require_static_manifest() -> None:
    """Refuse to serve without a usable manifest (called by the WSGI and ASGI entry points)."""
    problem = static_manifest_problem()
    if problem:
        raise ImproperlyConfigured(problem)


@register(Tags.staticfiles, deploy=True)
def check_static_manifest(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problem = static_manifest_problem()
    if not problem:
        return []
    return [
        CheckError(
            problem,
            hint="collectstatic writes the manifest; the Docker image runs it when it is built.",
            id="registry.E010",
        )
    ]
