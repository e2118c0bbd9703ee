"""Slows down password guessing: failed sign-ins are counted per client address and user name,
and per client address alone.

Two budgets, over the same window of ``LOGIN_LOCKOUT_SECONDS`` from the first failure:

- ``LOGIN_FAILURE_LIMIT`` failures for one user name from one address: that address then waits
  before it may try that name again, even with the right password. The lockout is aimed at the
  guesser's address only, so an attacker cannot lock the real user out of their own machine.
- ``LOGIN_ADDRESS_FAILURE_LIMIT`` failures from one address across all names (higher): against
  password spraying, one common password tried on many names, which stays under every per-name
  limit. Only that address waits; a success does not refill this budget (an attacker with an
  account of their own could otherwise sign in between guesses).

A check may start only while the failures recorded plus the checks in flight stay within the
budget (the cache's atomic increment keeps that count): guesses sent at once cannot all be
checked before the first failure is written, and right passwords sent at once (a client that
downloads with many threads) wait a moment for a slot instead of being refused. The counts
live in Django's cache, which must be shared by every web process (``DJANGO_CACHE_URL``;
``check --deploy`` says so), or each process counts its own.

The address is ``REMOTE_ADDR``, or, with ``TRUST_X_FORWARDED_FOR``, the ``X-Forwarded-For``
entry appended by the outermost of ``TRUSTED_PROXY_COUNT`` proxies (counted from the right):
entries to its left were written by the client and are ignored. IPv6 addresses are counted by
their /64 network, which one host usually holds whole.

Why this is not django-axes (nor django-ipware for the address): tried against these rules and
their tests, with the failures observed and what would make us switch, in
docs/decisions/0012-sign-in-throttle.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.http import HttpRequest

from accounts.conf import account_settings

T = TypeVar("T")


class Locked(Exception):
    """Too many failures: the attempt was refused without looking at the password."""

    def __init__(self, message: str, seconds: int) -> None:
        super().__init__(message)
        self.message = message
        self.seconds = seconds


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    if account_settings().trust_x_forwarded_for:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        proxies = account_settings().trusted_proxy_count
        # Fewer entries than proxies: the request did not come through all of them, so no entry
        # can be trusted; the connection's own address is the one nobody can forge.
        if len(hops) >= proxies:
            return hops[-proxies]
    return remote


def _counted_as(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class _Budget:
    """Failures in the cache, over a window that starts at the first failure, and the checks
    in flight.

    The window's start is a key of its own, written with ``add`` (only if absent); the failure
    count's key is named after that start, so a new window always begins from a new count even
    if a count outlived its window. A check may start only while the failures recorded plus the
    checks in flight (its own included) stay within the limit: guesses sent at once cannot all
    be checked before the first failure is written, and right passwords sent at once (a client
    downloading with many threads) wait for a slot instead of being refused.
    """

    # A check that never reports back (its process died) frees its slot after this long.
    IN_FLIGHT_TIMEOUT = 60

    def __init__(self, name: str, limit: int) -> None:
        self.key = "login-failures:" + hashlib.sha256(name.encode()).hexdigest()
        self.limit = limit
        self.window = account_settings().login_lockout_seconds
        self.since: float | None = None

    def _count_key(self) -> str:
        return f"{self.key}:{self.since!r}"

    def failures(self) -> int:
        self.since = cache.get(self.key + ":since")
        return 0 if self.since is None else int(cache.get(self._count_key(), 0))

    def fail(self) -> None:
        """Record one failure."""
        cache.add(self.key + ":since", time.time(), timeout=self.window)
        self.since = cache.get(self.key + ":since", time.time())
        count_key = self._count_key()
        cache.add(count_key, 0, timeout=self.window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between the two calls
            cache.set(count_key, 1, timeout=self.window)

    def claim(self) -> bool:
        """Take a slot for one check; False (and no slot) if the budget has none left."""
        in_flight_key = self.key + ":in-flight"
        cache.add(in_flight_key, 0, timeout=self.IN_FLIGHT_TIMEOUT)
        try:
            in_flight = cache.incr(in_flight_key)
        except ValueError:
            cache.set(in_flight_key, 1, timeout=self.IN_FLIGHT_TIMEOUT)
            in_flight = 1
        if self.failures() + in_flight <= self.limit:
            return True
        self.release()
        return False

    def release(self) -> None:
        try:
            cache.decr(self.key + ":in-flight")
        except ValueError:
            pass

    def clear(self) -> None:
        cache.delete_many([self.key + ":since", self._count_key()])

    def seconds_left(self) -> int:
        if self.since is None:
            return 1
        return max(1, int(self.since + self.window - time.time()))


# How long an attempt waits for a slot while other checks of the same budget are in flight.
SLOT_WAIT_SECONDS = 10.0
_SLOT_POLL_SECONDS = 0.02


def _locked(username: str, per_name: _Budget, per_address: _Budget) -> Locked | None:
    if per_name.failures() >= per_name.limit:
        wait = per_name.seconds_left()
        return Locked(
            f"Too many failed sign-ins for '{username}' from this client; try again in "
            f"{wait} seconds.",
            wait,
        )
    if per_address.failures() >= per_address.limit:
        wait = per_address.seconds_left()
        return Locked(
            f"Too many failed sign-ins from this address; try again in {wait} seconds.", wait
        )
    return None


def attempt(request: HttpRequest | None, username: str, verify: Callable[[], T | None]) -> T | None:
    """``verify()`` (which checks the credentials and answers None when they are wrong) under
    both budgets. Raises ``Locked`` without calling it when either budget is spent."""
    address = _counted_as(client_address(request))
    per_name = _Budget(f"{address}\x00{username.lower()}", account_settings().login_failure_limit)
    per_address = _Budget(address, account_settings().login_address_failure_limit)
    deadline = time.monotonic() + SLOT_WAIT_SECONDS
    while True:
        locked = _locked(username, per_name, per_address)
        if locked is not None:
            raise locked
        if per_name.claim():
            if per_address.claim():
                break
            per_name.release()
        if time.monotonic() >= deadline:
            raise Locked("Too many sign-ins at once from this address; try again shortly.", 1)
        time.sleep(_SLOT_POLL_SECONDS)
    try:
        result = verify()
        if result is None:
            # Recorded before the slots are freed, so a waiting attempt sees the failure.
            per_name.fail()
            per_address.fail()
            return None
    finally:
        per_name.release()
        per_address.release()
    per_name.clear()
    return result
