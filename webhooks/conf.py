"""The ``WEBHOOKS`` settings, read and checked through one small object.

The defaults and the environment variables are in config/settings.py, the one place each
default is written; this module only parses and checks what ``settings.WEBHOOKS`` holds
(kernel/conf.py: every key present, each value of its field's type)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from kernel.conf import SettingsGroup, strings

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


def _networks(values: object) -> tuple[Network, ...]:
    networks = []
    for value in strings(values):
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"WEBHOOKS_ALLOWED_NETWORKS: {value!r} is not a CIDR network such as 10.0.0.0/8."
            ) from None
    return tuple(networks)


def _schemes(values: object) -> tuple[str, ...]:
    schemes = tuple(scheme.strip().lower() for scheme in strings(values))
    unknown = set(schemes) - {"http", "https"}
    if unknown:
        raise ImproperlyConfigured(
            f"WEBHOOKS_ALLOWED_SCHEMES: {', '.join(sorted(unknown))} not supported (http, https)."
        )
    return schemes


_WEBHOOKS = SettingsGroup(
    "WEBHOOKS",
    WebhookSettings,
    convert={"allowed_networks": _networks, "allowed_schemes": _schemes},
)


def webhook_settings() -> WebhookSettings:
    """The current settings. Parsed again whenever ``settings.WEBHOOKS`` is another object
    (``override_settings`` and the ``settings`` fixture replace it)."""
    return _WEBHOOKS.get()
