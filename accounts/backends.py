"""The authentication backend behind every sign-in: the web UI's form, the admin, and HTTP Basic.

It accepts a user's password or one of the user's API tokens in the password field (what
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` send), and counts failures so that
guessing is throttled (``accounts.throttle``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts import services, throttle, tokens


class RegistryBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or password is None:
            return None
        if throttle.seconds_locked(request, username):
            # Stops Django trying other backends; the caller reports the lockout.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and tokens.looks_like_token(password):
            token_user = services.api_token_authenticate(token=password)
            if token_user is not None and token_user.get_username() == username:
                user = token_user
        if user is None:
            throttle.record_failure(request, username)
            return None
        throttle.record_success(request, username)
        return user
