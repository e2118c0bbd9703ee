"""The authentication backend behind every sign-in form: the web UI's and the admin's.

It accepts a user's password only. API tokens are for programs (HTTP Basic and Bearer in
``accounts.authentication``); a token typed into a sign-in form is a wrong password, so a token
can never open a browser session, which would outlive the token's expiry and its revocation.
Failures are counted so that guessing is throttled (``accounts.throttle``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts import throttle


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
        try:
            return throttle.attempt(
                request,
                username,
                lambda: super(RegistryBackend, self).authenticate(
                    request, username=username, password=password, **kwargs
                ),
            )
        except throttle.Locked as exc:
            # Stops Django trying other backends; the form shows its usual refusal.
            raise PermissionDenied(exc.message) from None
