"""The ``WEBHOOKS`` settings, read and checked through one small object.

The defaults and the environment variables are in config/settings.py, the one place each
default is written; this module only parses and checks what ``settings.WEBHOOKS`` holds."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WebhookSettings:
    enabled: bool
    allowed_networks: tuple[Network, ...]
    allowed_schemes: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_max: float
    disable_after_failures: int
    sweep_interval: float
    sweep_grace: float
    claim_lease: float
    max_body_bytes: int


def _networks(values: list[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"WEBHOOKS_ALLOWED_NETWORKS: {value!r} is not a CIDR network such as 10.0.0.0/8."
            ) from None
    return tuple(networks)


_cache: tuple[object, WebhookSettings] | None = None


def webhook_settings() -> WebhookSettings:
    """The current settings. Parsed again whenever ``settings.WEBHOOKS`` is another object
    (``override_settings`` and the ``settings`` fixture replace it)."""
    global _cache
    current = settings.WEBHOOKS
    if _cache is not None and _cache[0] is current:
        return _cache[1]
    parsed = _parse(current)
    _cache = (current, parsed)
    return parsed


def _parse(raw: dict) -> WebhookSettings:
    missing = [
        field.name.upper() for field in fields(WebhookSettings) if field.name.upper() not in raw
    ]
    if missing:
        raise ImproperlyConfigured(
            f"settings.WEBHOOKS lacks {', '.join(missing)} (config/settings.py sets every key)."
        )
    schemes = tuple(scheme.strip().lower() for scheme in raw["ALLOWED_SCHEMES"])
    unknown = set(schemes) - {"http", "https"}
    if unknown:
        raise ImproperlyConfigured(
            f"WEBHOOKS_ALLOWED_SCHEMES: {', '.join(sorted(unknown))} not supported (http, https)."
        )
    return WebhookSettings(
        enabled=bool(raw["ENABLED"]),
        allowed_networks=_networks(list(raw["ALLOWED_NETWORKS"])),
        allowed_schemes=schemes,
        connect_timeout=float(raw["CONNECT_TIMEOUT"]),
        read_timeout=float(raw["READ_TIMEOUT"]),
        max_attempts=int(raw["MAX_ATTEMPTS"]),
        backoff_base=float(raw["BACKOFF_BASE"]),
        backoff_max=float(raw["BACKOFF_MAX"]),
        disable_after_failures=int(raw["DISABLE_AFTER_FAILURES"]),
        sweep_interval=float(raw["SWEEP_INTERVAL"]),
        sweep_grace=float(raw["SWEEP_GRACE"]),
        claim_lease=float(raw["CLAIM_LEASE"]),
        max_body_bytes=int(raw["MAX_BODY_BYTES"]),
    )
