"""The registry's keys of the ``REGISTRY`` settings, read through one typed object
(``registry_settings()``).

Every default is in config/settings.py; this module only declares the types (kernel/conf.py).
The sign-in, token and permission keys of the same dict are read by accounts/conf.py."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.conf import SettingsGroup


@dataclass(frozen=True)
class RegistrySettings:
    # Largest page a search may ask for (the MLflow protocol's limits).
    max_results_registered_models: int
    max_results_model_versions: int
    # The MLflow tracking server's web UI, where the version page links runs ("": no link).
    tracking_ui_url: str


_REGISTRY = SettingsGroup("REGISTRY", RegistrySettings)


def registry_settings() -> RegistrySettings:
    """The current settings. Parsed again whenever ``settings.REGISTRY`` is another object
    (``override_settings`` and the ``settings`` fixture replace it)."""
    return _REGISTRY.get()
