"""Slows down password guessing: failed sign-ins are counted per client and user name.

After ``LOGIN_FAILURE_LIMIT`` failures within ``LOGIN_LOCKOUT_SECONDS``, further attempts from
that client for that user name are refused until the window has passed, even with the right
password. The real user is never locked out for longer than the window, and only from the
client that failed (usually the attacker's). Counts live in Django's cache: configure a shared
cache (``DJANGO_CACHE_URL``, e.g. Redis) when several web processes serve the registry.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    if settings.REGISTRY["TRUST_X_FORWARDED_FOR"]:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "unknown")


def _key(request: HttpRequest | None, username: str) -> str:
    raw = f"{client_address(request)}\x00{username.lower()}".encode()
    return "login-failures:" + hashlib.sha256(raw).hexdigest()


def seconds_locked(request: HttpRequest | None, username: str) -> int:
    """How long this client must still wait before trying this user name again (0: not locked)."""
    entry = cache.get(_key(request, username))
    if not entry:
        return 0
    failures, first_at = entry
    remaining = int(first_at + settings.REGISTRY["LOGIN_LOCKOUT_SECONDS"] - time.time())
    if failures >= settings.REGISTRY["LOGIN_FAILURE_LIMIT"] and remaining > 0:
        return remaining
    return 0


def record_failure(request: HttpRequest | None, username: str) -> None:
    key = _key(request, username)
    window = settings.REGISTRY["LOGIN_LOCKOUT_SECONDS"]
    failures, first_at = cache.get(key) or (0, time.time())
    if time.time() - first_at > window:
        failures, first_at = 0, time.time()
    cache.set(key, (failures + 1, first_at), timeout=window)


def record_success(request: HttpRequest | None, username: str) -> None:
    cache.delete(_key(request, username))
