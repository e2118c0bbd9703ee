"""DRF authentication for the API: Bearer tokens, HTTP Basic (password or token) and sessions.

HTTP Basic comes first in ``DEFAULT_AUTHENTICATION_CLASSES`` so that an anonymous call gets a
401 with a ``WWW-Authenticate`` challenge (what both clients expect), not a 403.

A request authenticated with an API token carries the ``ApiToken`` as ``request.auth`` (None
for a password or a session), so that what the token may do can depend on it (a token creates
tokens that expire no later than itself, ``accounts.services.api_token_create``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.contrib.auth.backends import ModelBackend
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import services, throttle, tokens
from accounts.models import ApiToken
from accounts.services import Caller


class RegistryBasicAuthentication(authentication.BasicAuthentication):
    """A password or one of the user's API tokens in the password field (what
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` send), throttled like the
    sign-in forms. It opens no session."""

    www_authenticate_realm = "model-registry"

    # The stubs type BasicAuthentication's auth as None; DRF passes on whatever this returns
    # (request.auth), here the token when one signed the request.
    def authenticate_credentials(  # type: ignore[override]
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, ApiToken | None]:
        # A token first, outside the throttle: 256 random bits are not guessed, and a program
        # signing every call with its token then costs one indexed lookup, as with Bearer,
        # not a password hash and the throttle's cache round trips. Anything else, a token
        # that does not match included, is a password attempt and is counted.
        if tokens.looks_like_token(password):
            token = services.api_token_authenticate(token=password)
            if token is not None and token.user.get_username() == userid:
                if not token.user.is_active:
                    raise exceptions.AuthenticationFailed("Invalid username, password or token.")
                return (token.user, token)

        def verify() -> tuple[Any, ApiToken | None] | None:
            user = ModelBackend().authenticate(request, username=userid, password=password)
            return (user, None) if user is not None else None

        try:
            found = throttle.attempt(request, userid, verify)
        except throttle.Locked as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        if found is None or not found[0].is_active:
            raise exceptions.AuthenticationFailed("Invalid username, password or token.")
        return found


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` with an API token (``MLFLOW_TRACKING_TOKEN``,
    ``databricks-sdk``'s ``token=``)."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Bearer header: expected one token.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid Bearer header.") from None
        token = services.api_token_authenticate(token=secret)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return (token.user, token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="model-registry"'


def folded_token(request: Request) -> Caller | None:
    """The API token of a call signed ``Bearer <token>`` or HTTP Basic with a token as the
    password, for a read that checks it in its own statement
    (docs/decisions/0019-hot-reads-in-one-statement.md), or None: no token, or a header these
    classes would refuse, which then go through them as usual."""
    header = authentication.get_authorization_header(request).split()
    if len(header) != 2:
        return None
    keyword = header[0].lower()
    if keyword == BearerTokenAuthentication.keyword.encode():
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not tokens.looks_like_token(secret):
            return None
        return Caller(token_digest=tokens.digest(secret))
    if keyword == b"basic":
        try:
            decoded = base64.b64decode(header[1]).decode("utf-8")
        except (TypeError, ValueError, UnicodeDecodeError, binascii.Error):
            return None
        userid, colon, password = decoded.partition(":")
        if not colon or not tokens.looks_like_token(password):
            return None
        return Caller(token_digest=tokens.digest(password), username=userid)
    return None
