"""The registry's "not found" refusals, each spelled once.

The texts are the reference server's: MLflow clients and the tests match on them, so they
change only with the protocol.
"""

from __future__ import annotations

from kernel.errors import RegistryError


def registered_model_not_found(name: str) -> RegistryError:
    """No registered model is called ``name`` (404 ``RESOURCE_DOES_NOT_EXIST``)."""
    return RegistryError.not_found(f"Registered Model with name={name} not found")


def model_version_not_found(name: str, version: int) -> RegistryError:
    """Model ``name`` has no version ``version`` (404 ``RESOURCE_DOES_NOT_EXIST``)."""
    return RegistryError.not_found(f"Model Version (name={name}, version={version}) not found")
