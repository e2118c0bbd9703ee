"""DRF authentication for the API: Bearer tokens, HTTP Basic (password or token) and sessions.

HTTP Basic comes first in ``DEFAULT_AUTHENTICATION_CLASSES`` so that an anonymous call gets a
401 with a ``WWW-Authenticate`` challenge (what both clients expect), not a 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import services, throttle


class RegistryBasicAuthentication(authentication.BasicAuthentication):
    www_authenticate_realm = "model-registry"

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        wait = throttle.seconds_locked(request, userid)
        if wait:
            raise exceptions.AuthenticationFailed(
                f"Too many failed sign-ins for '{userid}' from this client; try again in "
                f"{wait} seconds."
            )
        try:
            user = authenticate(request=request, username=userid, password=password)
        except PermissionDenied:
            user = None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid username, password or token.")
        return (user, None)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` with an API token (``MLFLOW_TRACKING_TOKEN``,
    ``databricks-sdk``'s ``token=``)."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Bearer header: expected one token.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid Bearer header.") from None
        user = services.api_token_authenticate(token=token)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return (user, token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="model-registry"'
