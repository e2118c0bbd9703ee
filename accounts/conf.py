"""The accounts' keys of the ``REGISTRY`` settings (permissions, sign-in throttle, API tokens),
read through one typed object (``account_settings()``).

Every default, environment variable (``REGISTRY_*``) and check is in config/settings.py; this
module only declares the types (kernel/conf.py). The search limits of the same dict are read
by registry/conf.py."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.conf import SettingsGroup


@dataclass(frozen=True)
class AccountSettings:
    # A level name of accounts.permissions.Level, held by every signed-in user on every model.
    default_permission_level: str
    # Groups whose members may create registered models; empty: every signed-in user may.
    model_creator_groups: tuple[str, ...]
    # The sign-in throttle (accounts/throttle.py).
    login_failure_limit: int
    login_lockout_seconds: int
    login_address_failure_limit: int
    trust_x_forwarded_for: bool
    trusted_proxy_count: int
    # API tokens one user may be given within the window.
    token_create_limit: int
    token_create_window_seconds: int


_ACCOUNTS = SettingsGroup("REGISTRY", AccountSettings)


def account_settings() -> AccountSettings:
    """The current settings. Parsed again whenever ``settings.REGISTRY`` is another object
    (``override_settings`` and the ``settings`` fixture replace it)."""
    return _ACCOUNTS.get()
