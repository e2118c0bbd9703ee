"""The ``PROVENANCE`` settings, read through one typed object (``provenance_settings()``).

Every default and environment variable is in config/settings.py (``REGISTRY_SIGNING_*``,
``REGISTRY_IDENTITY``, ``REGISTRY_TRAIL_HEAD_*``, listed in docs/configuration.md); this module
only declares the types (kernel/conf.py)."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.conf import SettingsGroup


@dataclass(frozen=True)
class ProvenanceSettings:
    # PEM of the registry's private key ("" : signing off).
    signing_key: str
    # PEM blocks of the public keys of earlier signing keys, still served for verification.
    retired_public_keys: str
    # Who signs: the registry's name in every statement it signs.
    identity: str


_PROVENANCE = SettingsGroup("PROVENANCE", ProvenanceSettings)


def provenance_settings() -> ProvenanceSettings:
    return _PROVENANCE.get()
